"""The boolean type: `true` or `false`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eligib.values.types.base import FactSpec, SqlCell, Value, ValueProblem, ValueType
from eligib.values.words import describe


@dataclass(frozen=True)
class BoolType(ValueType):
    def __str__(self) -> str:
        return "a condition (true/false)"

    def parse(self, raw: object, spec: FactSpec) -> Value:
        if isinstance(raw, bool):
            return raw
        raise ValueProblem(f"expected true or false, got {describe(raw)}")

    def show(self, value: Value, unit: str | None = None) -> str:
        return "true" if value else "false"

    def to_file(self, value: Value) -> Any:
        return value

    def json_schema(self, spec: FactSpec) -> dict[str, Any]:
        return {"type": "boolean"}

    def z3_variable(self, name: str, ctx: Any) -> Any:
        import z3

        return z3.Bool(name, ctx)

    def z3_equals(self, var: Any, value: Value) -> Any:
        import z3

        return var == z3.BoolVal(bool(value), var.ctx)

    def from_model(self, raw: Fraction | bool) -> Value:
        return bool(raw)

    def sql_cell(self, cell: str, spec: FactSpec) -> SqlCell | None:
        return SqlCell(f"({cell} = 'true')", f"({cell} IN ('true', 'false'))")

    def from_text(self, text: str) -> object:
        """`true` or `false` in any case, around spaces; any other text is refused by `parse`."""
        word = text.strip().lower()
        return True if word == "true" else False if word == "false" else text

    def candidates(self, spec: FactSpec, constants: Sequence[Fraction], anchors: Sequence[int]) -> Sequence[Value]:
        return [False, True]

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        from hypothesis import strategies as st

        return st.booleans()


BOOL = BoolType()
