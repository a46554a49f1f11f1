"""The number type: a plain number, or a quantity in a unit, exact (a Fraction in canonical base units)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from eligib.limits import MAX_VALUE_TEXT
from eligib.values.numbers import BadNumber, decimal_or_bad, format_decimal, within_limits
from eligib.values.types.base import (
    FactSpec,
    SqlCell,
    Value,
    ValueProblem,
    ValueType,
    check_range,
    exact_or_problem,
    sql_scaled_compare,
)
from eligib.values.units import DURATION, PLAIN, Kind, UnitError, dimension_name, parse_unit
from eligib.values.words import clip, describe

PLAIN_NUMBER = r"^\s*[+-]?\d+(\.\d+)?\s*$"
SQL_PLAIN_NUMBER = r"[+-]?[0-9]{1,18}(\.[0-9]{1,18})?"  # what SQL reads exactly as DECIMAL(38, 18)
NUMBER_WITH_UNIT = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)(?:\s*(\S(?:.*\S)?))?\s*")


@dataclass(frozen=True)
class NumType(ValueType):
    """A number: plain (`unit` None) or a quantity in a unit; `integer` for whole numbers of the unit."""

    kind: Kind  # values of one kind convert into each other (units.Kind)
    unit: str | None  # a unit as written, for messages and display; None for a plain number
    integer: bool = False

    def __str__(self) -> str:
        if self.unit is None:
            return "a plain number"
        if self.kind == PLAIN:
            return f"a ratio (`{self.unit}`)"
        return f"{dimension_name(self.kind)} (`{self.unit}`)"

    def same_kind(self, other: ValueType) -> bool:
        return isinstance(other, NumType) and other.kind == self.kind and (other.unit is None) == (self.unit is None)

    @property
    def is_duration(self) -> bool:
        return self.kind == DURATION

    @property
    def is_percentage(self) -> bool:
        return self.kind == parse_unit("%").kind

    @property
    def factor(self) -> Fraction:
        """The canonical value of one declared unit."""
        return parse_unit(self.unit).factor if self.unit else Fraction(1)

    @property
    def constant_key(self) -> tuple[Kind, bool]:
        """Which literals of a protocol are thresholds for values of this type."""
        return self.kind, self.unit is None

    def parse(self, raw: object, spec: FactSpec) -> Value:
        number, unit = self._split(raw)
        declared = self.unit
        if unit is None or (declared is not None and unit == declared):
            canonical = number * self.factor
        else:
            factor, offset = self._unit_factor(unit, spec)
            canonical = number * factor + offset
        if self.integer and (canonical / self.factor).denominator != 1:
            shown = format_decimal(canonical / self.factor)
            raise ValueProblem(f"expected a whole number{f' of {declared}' if declared else ''}, got {shown}")
        check_range(canonical, spec, self.show)
        return canonical

    def doubt(self, raw: object) -> tuple[str, str] | None:
        """A bare number between 0 and 1 for a percentage may be a fraction (`0.62` meant as 62 %):
        it is read as written (0.62 %), with this (message, help) for a warning."""
        if not self.is_percentage:
            return None
        try:
            number, unit = self._split(raw)
        except ValueProblem:
            return None
        if unit is not None or not 0 < abs(number) < 1:
            return None
        written, fraction = format_decimal(number), format_decimal(number * 100)
        return (f"{written} is read as {written} %; if it is a fraction, it means {fraction} %",
                f'write the unit to say which: "{written} %" or "{fraction} %"')

    def _unit_factor(self, unit: str, spec: FactSpec) -> tuple[Fraction, Fraction]:
        """(canonical value of one `unit`, offset) for this fact: same kind, or by a declared conversion."""
        declared = self.unit
        try:
            given = parse_unit(unit)
        except UnitError as exc:
            raise ValueProblem(f"unknown unit `{clip(unit)}`: {exc}", help=self.accepted(spec)) from None
        if declared is not None and given.kind in spec.conversions:
            ratio, offset = spec.conversions[given.kind]
            return given.factor * ratio, offset
        if declared is not None and given.dims == self.kind[0] and given.kind != self.kind:
            raise ValueProblem(f"unit `{unit}` cannot be converted to `{declared}`: it measures "
                               f"{dimension_name(given.kind)}, not {dimension_name(self.kind)}",
                               help=f"look-alike units are different measures (HbA1c in mmol/mol is not HbA1c in "
                                    f"%; a clearance in mL/min is not one per 1.73 m2 of body surface); give the "
                                    f"value in `{declared}`" + (", or declare a conversion (`where`)"
                                                                 if spec.conversions == {} else ""))
        if declared is None or given.kind != self.kind:
            raise ValueProblem(f"unit `{unit}` cannot be converted to `{declared or 'a plain number'}`",
                               help=self.accepted(spec))
        return given.factor, Fraction(0)

    def _split(self, raw: object) -> tuple[Fraction, str | None]:
        """(number as written, unit as written or None) from a number, a text "6.5 g/dL" or a quantity object."""
        if isinstance(raw, dict):
            return self._split_object(raw)
        if isinstance(raw, bool):
            raise ValueProblem(f"expected a number, got {describe(raw)}", help=self.accepted())
        if isinstance(raw, BadNumber):
            raise ValueProblem(f"`{raw}` {raw.reason}", help="see docs/limits.md")
        if isinstance(raw, int):
            return exact_or_problem(within_limits(Decimal(raw)) if raw.bit_length() <= 256
                          else BadNumber(str(raw)[:40], "is beyond the number limits")), None
        if isinstance(raw, Decimal):
            return exact_or_problem(within_limits(raw)), None
        if isinstance(raw, float):  # only from library callers; keep the decimal they wrote
            return exact_or_problem(decimal_or_bad(repr(raw))), None
        if isinstance(raw, Fraction):  # only from library callers: an exact number in the declared unit
            if max(raw.numerator.bit_length(), raw.denominator.bit_length()) > 256:
                raise ValueProblem("the number is beyond the number limits", help="see docs/limits.md")
            return raw, None
        if isinstance(raw, str):
            if len(raw) > MAX_VALUE_TEXT:
                raise ValueProblem(f"the text is longer than {MAX_VALUE_TEXT} characters", help="see docs/limits.md")
            match = NUMBER_WITH_UNIT.fullmatch(raw)
            if not match:
                raise ValueProblem(f"`{raw}` is not a number with an optional unit", help=self.accepted())
            return exact_or_problem(decimal_or_bad(match.group(1))), match.group(2)
        raise ValueProblem(f"expected a number, got {describe(raw)}", help=self.accepted())

    def _split_object(self, raw: dict[Any, Any]) -> tuple[Fraction, str | None]:
        if "value" not in raw or set(raw) - {"value", "unit"}:
            raise ValueProblem('a quantity object needs exactly "value" and "unit"',
                               help='write {"value": 6.5, "unit": "g/dL"}')
        unit = raw.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise ValueProblem(f"the unit must be text, got {describe(unit)}")
        value = raw["value"]
        number, inner_unit = (Fraction(0), "") if isinstance(value, dict) else self._split(value)
        if inner_unit is not None:
            raise ValueProblem('the "value" of a quantity object is a plain number',
                               help='put the unit in "unit": {"value": 6.5, "unit": "g/dL"}')
        return number, unit

    def accepted(self, spec: FactSpec | None = None) -> str:
        """The help line listing the units a value of this type may be written in."""
        if self.unit is None:
            return "give a plain number"
        accepted = f"units accepted: `{self.unit}` or any unit of {dimension_name(self.kind)}"
        for conversion in (spec.conversion_texts if spec is not None else ()):
            accepted += f", or via `{conversion}`"
        return f"{accepted}; e.g. \"12 {self.unit}\""

    def show(self, value: Value, unit: str | None = None) -> str:
        shown_unit = unit if unit is not None else self.unit
        factor = parse_unit(shown_unit).factor if shown_unit else Fraction(1)
        return format_decimal(_number(value) / factor) + (f" {shown_unit}" if shown_unit else "")

    def to_file(self, value: Value) -> Any:
        declared = _number(value) / self.factor
        text = format_decimal(declared, max_places=12)
        if text.startswith("~"):
            raise ValueError(f"the value {declared}, which is not a finite decimal")
        if self.unit is None:
            return int(declared) if declared.denominator == 1 else text
        return f"{text} {self.unit}"

    def json_schema(self, spec: FactSpec) -> dict[str, Any]:
        bare: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        if spec.low is not None:
            bare["minimum"] = _json_number(Fraction(spec.low) / self.factor)
        if spec.high is not None:
            bare["maximum"] = _json_number(Fraction(spec.high) / self.factor)
        if self.unit is None:
            return {"anyOf": [bare, {"type": "string", "pattern": PLAIN_NUMBER}]}
        with_unit = {"type": "string", "pattern": r"^\s*[+-]?\d+(\.\d+)?(\s*\S.*)?$",
                     "description": f"a number and a unit convertible to {self.unit}, e.g. \"12 {self.unit}\""}
        plain = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": PLAIN_NUMBER}]}
        as_object = {"type": "object", "additionalProperties": False, "required": ["value"],
                     "properties": {"value": plain, "unit": {"type": "string"}}}
        return {"anyOf": [bare, with_unit, as_object]}

    def z3_variable(self, name: str, ctx: Any) -> Any:
        import z3

        return z3.Int(name, ctx) if self.integer else z3.Real(name, ctx)

    def z3_term(self, var: Any) -> Any:
        """A numeric variable in canonical units; an integer stays an Int term when its factor is whole."""
        import z3

        from eligib.values.z3terms import rational

        factor = self.factor
        if z3.is_int(var) and factor.denominator == 1:
            return var if factor == 1 else var * z3.IntVal(factor.numerator, var.ctx)
        real = z3.ToReal(var) if z3.is_int(var) else var
        return real if factor == 1 else real * rational(factor, var.ctx)

    def z3_equals(self, var: Any, value: Value) -> Any:
        import z3

        from eligib.values.z3terms import rational

        declared = _number(value) / self.factor
        return var == (z3.IntVal(int(declared), var.ctx) if self.integer else rational(declared, var.ctx))

    def z3_domain(self, var: Any, spec: FactSpec) -> list[Any]:
        from eligib.values.z3terms import rational, relate

        canonical = self.z3_term(var)
        bounds = [(">=", spec.low), ("<=", spec.high)]
        return [relate(op, canonical, rational(bound, var.ctx)) for op, bound in bounds if bound is not None]

    def from_model(self, raw: Fraction | bool) -> Value:
        return Fraction(raw) * self.factor

    def sql_cell(self, cell: str, spec: FactSpec) -> SqlCell | None:
        """A bare decimal in the declared unit (at most 18 digits each side of the point), read as an exact
        DECIMAL; the declared range (and wholeness) checked by cross-multiplication. Units go to `parse`."""
        value = f"TRY_CAST({cell} AS DECIMAL(38, 18))"
        checks = [f"regexp_full_match({cell}, '{SQL_PLAIN_NUMBER}')"]
        for op, bound in ((">=", spec.low), ("<=", spec.high)):
            if bound is not None:
                checks.append(sql_scaled_compare(value, op, Fraction(bound) / self.factor))
        if self.integer:
            checks.append(f"floor({value}) = {value}")
        return SqlCell(value, f"coalesce({' AND '.join(checks)}, FALSE)", self.factor)

    def candidates(self, spec: FactSpec, constants: Sequence[Fraction], anchors: Sequence[int]) -> Sequence[Value]:
        """The declared bounds, and each threshold of the same kind with a value just below and above it
        (a whole unit for integers, a hundredth of one for decimals)."""
        factor = self.factor
        low = Fraction(spec.low) if spec.low is not None else None
        high = Fraction(spec.high) if spec.high is not None else None
        step = factor if self.integer else factor / 100
        wide = 1000 * factor
        tried = {low if low is not None else (high if high is not None else Fraction(0)) - wide,
                 high if high is not None else (low if low is not None else Fraction(0)) + wide}
        tried |= {value + shift for value in constants for shift in (-step, Fraction(0), step)}
        found = set()
        for value in tried:
            if self.integer and (value / factor).denominator != 1:
                continue
            if (low is None or value >= low) and (high is None or value <= high):
                found.add(value)
        return sorted(found)

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        from hypothesis import strategies as st

        factor = self.factor
        low = Fraction(spec.low) / factor if spec.low is not None else Fraction(-1000)
        high = Fraction(spec.high) / factor if spec.high is not None else Fraction(1000)
        step = Fraction(1) if self.integer else Fraction(1, 10)
        count = int((high - low) / step)
        spread = st.integers(0, count).map(lambda i: (low + i * step) * factor)
        nearby = [c for c in constants if low * factor <= c <= high * factor and _short(c / factor)
                  and (not self.integer or (c / factor).denominator == 1)]
        return st.one_of(spread, st.sampled_from(nearby)) if nearby else spread


def _number(value: Value) -> Fraction:
    assert isinstance(value, (Fraction, int)) and not isinstance(value, bool), "a number's value is a Fraction"
    return Fraction(value)


def _short(value: Fraction) -> bool:
    """Does a number have a short exact decimal form (a facts file can state it)?"""
    return (value * 10**6).denominator == 1


def _json_number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)
