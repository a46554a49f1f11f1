"""The value types: one class per kind of fact value, each the one home for everything about its values.

A type owns: how a patient file writes a value (`parse`), the exact canonical value every stage
works with, how a value is shown (`show`) and written back to a facts file (`to_file`), its JSON
Schema, its Z3 encoding and decoding, and a hypothesis strategy that generates values. Canonical
values are:
- a number: a Fraction in canonical base units (units.py), so 6.5 g/dL and 65 g/L are equal;
- a date: its proleptic Gregorian day number (`date.toordinal()`);
- an enumeration value: its name; a boolean: a bool;
- NONE: the fact is known to have no value (test not done, event never happened).
An unknown fact is simply absent (evaluators use None for it). Adding a type is one new class here.

Z3 and hypothesis are imported inside the methods that need them, so reading patients needs neither.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar, Protocol

from eligib.limits import EARLIEST_DATE, LATEST_DATE, MAX_VALUE_TEXT
from eligib.values.calendar import format_date
from eligib.values.numbers import BadNumber, decimal_or_bad, exact, format_decimal, within_limits
from eligib.values.units import DURATION, PLAIN, Kind, UnitError, dimension_name, parse_unit
from eligib.values.words import clip, describe, suggest

# Generated dates fall in these years unless the fact declares its own range (they read well).
GENERATED_DATES = (dt.date(2015, 1, 1).toordinal(), dt.date(2030, 12, 31).toordinal())
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
PLAIN_NUMBER = r"^\s*[+-]?\d+(\.\d+)?\s*$"
NUMBER_WITH_UNIT = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)(?:\s*(\S(?:.*\S)?))?\s*")


class NoneValue:
    """The one value `none`: known to have no value. Compare with `is NONE`."""

    _instance: ClassVar[NoneValue | None] = None

    def __new__(cls) -> NoneValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NONE"

    def __reduce__(self) -> tuple[type[NoneValue], tuple[()]]:
        return (NoneValue, ())


NONE = NoneValue()
Value = bool | Fraction | int | str | NoneValue


class ValueProblem(ValueError):
    """A written value that is not a value of the type; `help` says how to write one."""

    def __init__(self, message: str, help: str = "") -> None:
        super().__init__(message)
        self.message, self.help = message, help


class FactSpec(Protocol):
    """What a type needs to know of a declared fact: its range and the unit conversions it accepts."""

    @property
    def name(self) -> str: ...
    @property
    def low(self) -> Fraction | int | None: ...
    @property
    def high(self) -> Fraction | int | None: ...
    @property
    def conversions(self) -> Mapping[Kind, Fraction]: ...
    @property
    def conversion_texts(self) -> Sequence[str]: ...


class ValueType:
    """A kind of value. Subclasses answer every question about their values; see the module docstring."""

    def same_kind(self, other: ValueType) -> bool:
        """Can values of the two types be compared with each other?"""
        return type(self) is type(other)

    def parse(self, raw: object, spec: FactSpec) -> Value:
        """A value as a patient file writes it -> the canonical value; ValueProblem when it is not one."""
        raise NotImplementedError

    def show(self, value: Value, unit: str | None = None) -> str:
        """A canonical value as a person reads it (in `unit`, or the type's own)."""
        raise NotImplementedError

    def to_file(self, value: Value) -> Any:
        """A canonical value as a facts file writes it (JSON)."""
        raise NotImplementedError

    def json_schema(self, spec: FactSpec) -> dict[str, Any]:
        raise NotImplementedError

    def z3_variable(self, name: str, ctx: Any) -> Any:
        raise NotImplementedError

    def z3_term(self, var: Any) -> Any:
        """The variable as the canonical value's term (a scaled quantity, for numbers)."""
        return var

    def z3_equals(self, var: Any, value: Value) -> Any:
        """The literal fixing the variable to a known canonical value."""
        raise NotImplementedError

    def z3_domain(self, var: Any, spec: FactSpec) -> list[Any]:
        """Constraints every value of the variable meets (declared range, enumeration size)."""
        return []

    def from_z3(self, term: Any) -> Value:
        """A model's value of the variable -> the canonical value."""
        raise NotImplementedError

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        """A hypothesis strategy of canonical values (leaning on `constants`, the protocol's thresholds)."""
        raise NotImplementedError


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

    def from_z3(self, term: Any) -> Value:
        import z3

        return z3.is_true(term)

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        from hypothesis import strategies as st

        return st.booleans()


@dataclass(frozen=True)
class EnumType(ValueType):
    fact: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"one of ({', '.join(self.values)})"

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

    def from_z3(self, term: Any) -> Value:
        return self.values[term.as_long()]

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        from hypothesis import strategies as st

        return st.sampled_from(self.values)


@dataclass(frozen=True)
class DateType(ValueType):
    def __str__(self) -> str:
        return "a date"

    @staticmethod
    def bounds(spec: FactSpec) -> tuple[int, int]:
        """The days a value may take: the declared range, else the years every patient file may give."""
        low = int(spec.low) if spec.low is not None else EARLIEST_DATE
        high = int(spec.high) if spec.high is not None else LATEST_DATE
        return low, high

    def parse(self, raw: object, spec: FactSpec) -> Value:
        if isinstance(raw, dt.datetime):
            raise ValueProblem("expected a date without a time", help="write YYYY-MM-DD")
        if isinstance(raw, dt.date):
            day = raw.toordinal()
        elif isinstance(raw, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw.strip()):
            try:
                day = dt.date.fromisoformat(raw.strip()).toordinal()
            except ValueError:
                raise ValueProblem(f"`{raw}` is not a calendar date", help="check the month and day") from None
        else:
            raise ValueProblem(f"expected a date (YYYY-MM-DD), got {describe(raw)}", help="write ISO 8601: 2026-11-20")
        low, high = self.bounds(spec)
        if (spec.low, spec.high) == (None, None) and not low <= day <= high:
            raise ValueProblem(f"{format_date(day)} is outside the dates accepted ({format_date(low)} to "
                               f"{format_date(high)})", help="check the year; a protocol that needs other dates "
                               "declares a range on the fact (docs/limits.md)")
        check_range(day, spec, format_date)
        return day

    def show(self, value: Value, unit: str | None = None) -> str:
        return format_date(int(value))

    def to_file(self, value: Value) -> Any:
        return format_date(int(value))

    def json_schema(self, spec: FactSpec) -> dict[str, Any]:
        return {"type": "string", "format": "date", "pattern": ISO_DATE}

    def z3_variable(self, name: str, ctx: Any) -> Any:
        import z3

        return z3.Int(name, ctx)

    def z3_equals(self, var: Any, value: Value) -> Any:
        return var == int(value)

    def z3_domain(self, var: Any, spec: FactSpec) -> list[Any]:
        low, high = self.bounds(spec)
        return [var >= low, var <= high]

    def from_z3(self, term: Any) -> Value:
        return int(term.as_long())

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        from hypothesis import strategies as st

        low = int(spec.low) if spec.low is not None else GENERATED_DATES[0]
        high = int(spec.high) if spec.high is not None else GENERATED_DATES[1]
        return st.integers(low, high)


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
            return f"a percentage or ratio (`{self.unit}`)"
        return f"{dimension_name(self.kind)} (`{self.unit}`)"

    def same_kind(self, other: ValueType) -> bool:
        return isinstance(other, NumType) and other.kind == self.kind and (other.unit is None) == (self.unit is None)

    @property
    def is_duration(self) -> bool:
        return self.kind == DURATION

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
            canonical = number * self._unit_factor(unit, spec)
        if self.integer and (canonical / self.factor).denominator != 1:
            shown = format_decimal(canonical / self.factor)
            raise ValueProblem(f"expected a whole number{f' of {declared}' if declared else ''}, got {shown}")
        check_range(canonical, spec, self.show)
        return canonical

    def _unit_factor(self, unit: str, spec: FactSpec) -> Fraction:
        """The canonical value of one `unit` for this fact: same kind, or by a declared conversion."""
        declared = self.unit
        try:
            given = parse_unit(unit)
        except UnitError as exc:
            raise ValueProblem(f"unknown unit `{clip(unit)}`: {exc}", help=self.accepted(spec)) from None
        if declared is not None and given.kind in spec.conversions:
            return given.factor * spec.conversions[given.kind]
        if declared is not None and given.dims == self.kind[0] and given.kind != self.kind:
            raise ValueProblem(f"unit `{unit}` cannot be converted to `{declared}`: it measures "
                               f"{dimension_name(given.kind)}, not {dimension_name(self.kind)}",
                               help=f"look-alike units are different measures (HbA1c in mmol/mol is not HbA1c in "
                                    f"%); give the value in `{declared}`")
        if declared is None or given.kind != self.kind:
            raise ValueProblem(f"unit `{unit}` cannot be converted to `{declared or 'a plain number'}`",
                               help=self.accepted(spec))
        return given.factor

    def _split(self, raw: object) -> tuple[Fraction, str | None]:
        """(number as written, unit as written or None) from a number, a text "6.5 g/dL" or a quantity object."""
        if isinstance(raw, dict):
            return self._split_object(raw)
        if isinstance(raw, bool):
            raise ValueProblem(f"expected a number, got {describe(raw)}", help=self.accepted())
        if isinstance(raw, BadNumber):
            raise ValueProblem(f"`{raw}` {raw.reason}", help="see docs/limits.md")
        if isinstance(raw, int):
            return _exact(within_limits(Decimal(raw)) if raw.bit_length() <= 256
                          else BadNumber(str(raw)[:40], "is beyond the number limits")), None
        if isinstance(raw, Decimal):
            return _exact(within_limits(raw)), None
        if isinstance(raw, float):  # only from library callers; keep the decimal they wrote
            return _exact(decimal_or_bad(repr(raw))), None
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
            return _exact(decimal_or_bad(match.group(1))), match.group(2)
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
        return format_decimal(Fraction(value) / factor) + (f" {shown_unit}" if shown_unit else "")  # type: ignore[arg-type]

    def to_file(self, value: Value) -> Any:
        declared = Fraction(value) / self.factor  # type: ignore[arg-type]
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
        as_object = {"type": "object", "additionalProperties": False, "required": ["value"],
                     "properties": {"value": {"anyOf": [{"type": "number"}, {"type": "string", "pattern": PLAIN_NUMBER}]},
                                    "unit": {"type": "string"}}}
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

        declared = Fraction(value) / self.factor  # type: ignore[arg-type]
        return var == (z3.IntVal(int(declared), var.ctx) if self.integer else rational(declared, var.ctx))

    def z3_domain(self, var: Any, spec: FactSpec) -> list[Any]:
        from eligib.values.z3terms import rational, relate

        canonical = self.z3_term(var)
        bounds = [(">=", spec.low), ("<=", spec.high)]
        return [relate(op, canonical, rational(bound, var.ctx)) for op, bound in bounds if bound is not None]

    def from_z3(self, term: Any) -> Value:
        import z3

        number = Fraction(term.as_long()) if z3.is_int_value(term) else term.as_fraction()
        return number * self.factor

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


BOOL = BoolType()
DATE = DateType()


def shown(value_type: ValueType, value: Value, unit: str | None = None) -> str:
    """A canonical value as a person reads it, `none` included."""
    return "none" if value is NONE else value_type.show(value, unit)


def check_range(value: Fraction | int, spec: FactSpec, show: Any) -> None:
    low, high = spec.low, spec.high
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{show(low) if low is not None else '...'} to {show(high) if high is not None else '...'}"
        raise ValueProblem(f"{show(value)} is outside the declared range {bounds}", help="check the value and its unit")


def _exact(number: Decimal | BadNumber) -> Fraction:
    try:
        return exact(number)
    except ValueError as exc:
        raise ValueProblem(str(exc), help="see docs/limits.md") from None


def _short(value: Fraction) -> bool:
    """Does a number have a short exact decimal form (a facts file can state it)?"""
    return (value * 10**6).denominator == 1


def _json_number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)
