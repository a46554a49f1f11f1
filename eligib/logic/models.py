"""A Z3 model read back as a patient: every fact's canonical value (as `decide` takes them).

Reading a model variable by variable costs a few Z3 calls each (about 30 us), which made witness
extraction the larger part of `eligib verify` on big protocols. `ModelValues` reads the whole model
at once from its text (one call) and looks each variable up by name; a value it does not recognise
(an algebraic number of a nonlinear model) is read through Z3 as before.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import z3

from eligib.values.types import NONE, History, Value
from eligib.values.types.base import z3_number

_DEFINITION = re.compile(r"\(define-fun (\|[^|]*\||[^\s()]+) \(\) (Int|Real|Bool)\s+")
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_DEFAULTS: dict[int, Fraction | bool] = {z3.Z3_BOOL_SORT: False, z3.Z3_INT_SORT: Fraction(0),
                                         z3.Z3_REAL_SORT: Fraction(0)}


class ModelValues:
    """Every constant's value in one model, read once; `value(var)` is its number or bool."""

    def __init__(self, model: Any, names: dict[int, tuple[Any, str, int]]) -> None:
        self.model = model
        self.names = names  # id of a variable -> (the variable, kept alive so its id stays its own; name; sort kind)
        self.parsed = _parse(model.sexpr())

    def value(self, var: Any) -> Fraction | bool:
        known = self.names.get(id(var))
        if known is None:
            known = self.names[id(var)] = (var, var.decl().name(), var.sort_kind())
        _, name, kind = known
        text = self.parsed.get(name)
        found = None if text is None else _number(_TOKEN.findall(text))
        if found is None:
            if text is not None or kind not in _DEFAULTS:  # unrecognised text, or a sort we do not default
                return z3_number(self.model.eval(var, model_completion=True))
            return _DEFAULTS[kind]  # a variable the model leaves free: what model completion gives it
        return found

    def true(self, var: Any) -> bool:
        return self.value(var) is True


def _parse(text: str) -> dict[str, str]:
    """`(define-fun NAME () SORT VALUE)` entries -> {NAME: VALUE}, the value's text (read when asked for)."""
    found: dict[str, str] = {}
    matches = list(_DEFINITION.finditer(text))
    if not matches:  # an empty model: a question that touches no variable (verify's parts.py)
        return found
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        body = text[match.end():end].strip()
        body = body[:-1].rstrip() if body.endswith(")") else body  # the definition's own closing parenthesis
        found[match.group(1).strip("|")] = body
    return found


def _number(tokens: list[str]) -> Fraction | bool | None:
    """true, false, 12, 1.5, (- X), (/ X Y), and nothing else."""
    value, rest = _term(tokens, 0)
    return value if rest == len(tokens) else None


def _term(tokens: list[str], at: int) -> tuple[Fraction | bool | None, int]:
    if at >= len(tokens):
        return None, at
    token = tokens[at]
    if token in ("true", "false"):
        return token == "true", at + 1
    if token != "(":
        try:
            return Fraction(token), at + 1
        except ValueError:
            return None, at + 1
    operator = tokens[at + 1] if at + 1 < len(tokens) else ""
    first, at = _term(tokens, at + 2)
    if operator == "-" and at < len(tokens) and tokens[at] == ")" and isinstance(first, Fraction):
        return -first, at + 1
    second, at = _term(tokens, at)
    if operator == "/" and at < len(tokens) and tokens[at] == ")" and isinstance(first, Fraction) \
            and isinstance(second, Fraction) and second != 0:
        return first / second, at + 1
    return None, len(tokens) + 1


def canonical_values(compiled: Any, model: Any, use_copy: frozenset[str] = frozenset(),
                     only: frozenset[str] | None = None) -> dict[str, Value]:
    """Every fact's value in the model (those in `only`, when given), canonical (as `decide` takes them);
    `use_copy` facts read their copy."""
    read = model if isinstance(model, ModelValues) else ModelValues(model, compiled.var_names)
    values: dict[str, Value] = {}
    for name, fact in compiled.facts.items():
        if only is not None and name not in only:
            continue
        copied = name in use_copy
        present = fact.copy_present if copied else fact.present
        if present is not None and not read.true(present):
            values[name] = NONE
        else:
            values[name] = fact.info.type.from_model(read.value(fact.copy_value if copied else fact.value))
    for name, history in compiled.histories.items():
        if only is None or name in only:
            values[name] = _history_in(history, read, name in use_copy)
    return {name: values[name] for name in compiled.checked.facts if name in values}  # in declared order


def _history_in(history: Any, read: ModelValues, copied: bool) -> History:
    """The items a model gives a history (the slots it makes present), as a complete list."""
    items = []
    for slot in history.slots:
        if not read.true(slot.copy_present if copied else slot.present):
            continue
        item: list[Value] = []
        for field in slot.fields.values():
            present = field.copy_present if copied else field.present
            if present is not None and not read.true(present):
                item.append(NONE)
            else:
                item.append(field.info.type.from_model(read.value(field.copy_value if copied else field.value)))
        items.append(tuple(item))
    return History(tuple(items))
