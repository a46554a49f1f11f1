"""The history type: a list of items, each a record of typed fields (prior therapies, transplants).

A patient file writes a history as a list of objects (complete: nothing else happened), or as
`{"items": [...], "complete": false}` when more items may exist that the file does not list. An
item's absent or null field is unknown. The canonical value is a `History`: each item a tuple of
its field values in declared order (None for unknown), plus whether the list is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eligib.values.types.base import (
    NONE,
    FactSpec,
    History,
    ItemValue,
    ParsedSpec,
    Value,
    ValueProblem,
    ValueType,
    parse_value,
    shown,
)
from eligib.values.words import clip, describe, suggest


@dataclass(frozen=True)
class ListType(ValueType):
    fact: str
    fields: tuple[ParsedSpec, ...]
    max_items: int
    order: str | None = None  # the field `latest` and `earliest` go by

    def __str__(self) -> str:
        return f"a history of {', '.join(f.name for f in self.fields)}"

    def same_kind(self, other: ValueType) -> bool:
        return isinstance(other, ListType) and other.fact == self.fact

    def field_index(self, name: str) -> int:
        return next(i for i, f in enumerate(self.fields) if f.name == name)

    def field(self, name: str) -> ParsedSpec:
        return self.fields[self.field_index(name)]

    def parse(self, raw: object, spec: FactSpec) -> Value:
        complete = True
        if isinstance(raw, dict):
            extra = sorted(str(k) for k in raw if k not in ("items", "complete"))
            if extra or "items" not in raw:
                raise ValueProblem(f"a history written as an object has `items` and `complete`, not "
                                   f"`{clip(extra[0]) if extra else 'items'}`" if extra else
                                   "a history written as an object needs `items`",
                                   help='write a list of items, or {"items": [...], "complete": false}')
            complete = raw.get("complete", True)
            if not isinstance(complete, bool):
                raise ValueProblem(f"`complete` must be true or false, got {describe(complete)}",
                                   help="false says more items may exist than the file lists")
            raw = raw["items"]
        if not isinstance(raw, list):
            raise ValueProblem(f"expected a list of items, got {describe(raw)}",
                               help='write e.g. [{"' + self.fields[0].name + '": ...}], one object per item')
        if len(raw) > self.max_items:
            raise ValueProblem(f"{len(raw)} items, but the protocol allows at most {self.max_items}",
                               help="the protocol declares `at most N items` for this history; check the file")
        return History(tuple(self._item(index, item) for index, item in enumerate(raw, 1)), complete)

    def _item(self, index: int, raw: object) -> tuple[ItemValue, ...]:
        if not isinstance(raw, dict):
            raise ValueProblem(f"item {index} must be an object of fields, got {describe(raw)}",
                               help=f"fields: {', '.join(f.name for f in self.fields)}")
        names = [f.name for f in self.fields]
        for key in raw:
            if str(key) not in names:
                raise ValueProblem(f"item {index} has an unknown field `{clip(str(key))}`",
                                   help=suggest(str(key), names) or f"fields: {', '.join(names)}")
        values: list[ItemValue] = []
        for spec in self.fields:
            value = raw.get(spec.name)
            try:
                values.append(None if value is None else parse_value(spec, value))
            except ValueProblem as exc:
                raise ValueProblem(f"item {index}, field `{spec.name}`: {exc.message}", help=exc.help) from None
        return tuple(values)

    def show(self, value: Value, unit: str | None = None) -> str:
        history = _history(value)
        count = len(history.items)
        text = f"{count} item{'s' if count != 1 else ''}"
        return text if history.complete else text + " (possibly more)"

    def show_item(self, history: History, index: int) -> str:
        """`therapies item 3 (agent daratumumab, end 2026-11-02)`: an item named for a person."""
        parts = [f"{spec.name} {shown(spec.type, value, None)}" for spec, value
                 in zip(self.fields, history.items[index], strict=True) if value is not None]
        return f"{self.fact} item {index + 1}" + (f" ({', '.join(parts)})" if parts else "")

    def to_file(self, value: Value) -> Any:
        history = _history(value)
        items = [{spec.name: "none" if field is NONE else spec.type.to_file(field)
                  for spec, field in zip(self.fields, item, strict=True) if field is not None}
                 for item in history.items]
        return items if history.complete else {"items": items, "complete": False}

    def json_schema(self, spec: FactSpec) -> dict[str, Any]:
        properties = {}
        for field in self.fields:
            schema = field.type.json_schema(field)
            if field.optional:
                schema = {"anyOf": [schema, {"const": "none"}]}
            properties[field.name] = {"anyOf": [schema, {"type": "null"}]}
        items = {"type": "array", "maxItems": self.max_items,
                 "items": {"type": "object", "properties": properties, "additionalProperties": False}}
        return {"anyOf": [items, {"type": "object", "required": ["items"], "additionalProperties": False,
                                  "properties": {"items": items, "complete": {"type": "boolean"}}}]}

    # A history has no single Z3 variable: it is compiled as item slots (eligib/logic/histories.py),
    # so nothing may ask it for one.
    def z3_variable(self, name: str, ctx: Any) -> Any:
        raise TypeError("a history is compiled as item slots, not as one variable")

    def z3_equals(self, var: Any, value: Value) -> Any:
        raise TypeError("a history is fixed item by item (history_literals), not as one variable")

    def from_model(self, raw: Fraction | bool) -> Value:
        raise TypeError("a history is read from a model item by item (logic/models.py)")

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        from hypothesis import strategies as st

        fields = [field.type.strategy(field) for field in self.fields]
        item = st.tuples(*fields)
        return st.builds(lambda items, complete: History(tuple(items), complete),
                         st.lists(item, max_size=min(self.max_items, 4)), st.booleans())


def _history(value: Value) -> History:
    assert isinstance(value, History), "a history's canonical value is a History"
    return value


__all__ = ["History", "ListType"]
