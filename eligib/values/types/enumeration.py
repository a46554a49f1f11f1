"""The enumeration type: one of the names a fact declares (`one of (t_all, t_lbl, aml)`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eligib.values.types.base import FactSpec, SqlCell, Value, ValueProblem, ValueType
from eligib.values.words import describe, suggest


@dataclass(frozen=True)
class EnumType(ValueType):
    fact: str
    values: tuple[str, ...]
    ordered: bool = False  # the values are ranked, lowest first (`is at least`, `is at most`)

    def __str__(self) -> str:
        return f"one of ({(' < ' if self.ordered else ', ').join(self.values)})"

    def same_kind(self, other: ValueType) -> bool:
        return isinstance(other, EnumType) and other.fact == self.fact

    def parse(self, raw: object, spec: FactSpec) -> Value:
        if isinstance(raw, str) and raw in self.values:
            return raw
        hint = suggest(raw, self.values) if isinstance(raw, str) else ""
        raise ValueProblem(f"expected one of {', '.join(self.values)}; got {describe(raw)}",
                           help=hint or f"allowed values: {', '.join(self.values)}")

    def show(self, value: Value, unit: str | None = None) -> str:
        return str(value)

    def to_file(self, value: Value) -> Any:
        return value

    def json_schema(self, spec: FactSpec) -> dict[str, Any]:
        return {"enum": list(self.values)}

    def z3_variable(self, name: str, ctx: Any) -> Any:
        import z3

        return z3.Int(name, ctx)

    def z3_equals(self, var: Any, value: Value) -> Any:
        return var == self.values.index(str(value))

    def z3_domain(self, var: Any, spec: FactSpec) -> list[Any]:
        return [var >= 0, var < len(self.values)]

    def from_model(self, raw: Fraction | bool) -> Value:
        return self.values[int(raw)]

    def sql_cell(self, cell: str, spec: FactSpec) -> SqlCell | None:
        from eligib.values.types.base import sql_text

        return SqlCell(cell, f"({cell} IN ({', '.join(sql_text(v) for v in self.values)}))")

    def candidates(self, spec: FactSpec, constants: Sequence[Fraction], anchors: Sequence[int]) -> Sequence[Value]:
        return list(self.values)

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        from hypothesis import strategies as st

        return st.sampled_from(self.values)
