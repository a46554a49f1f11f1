"""What every value type shares: the canonical values, `none`, the error a written value raises, and
the interface each type implements (see eligib/values/types/__init__.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar, Protocol

from eligib.limits import MAX_VALUE_TEXT
from eligib.values.numbers import BadNumber, exact
from eligib.values.units import Kind


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


@dataclass(frozen=True)
class History:
    """A patient's items of one history (field values in declared order; None = unknown)."""

    items: tuple[tuple[ItemValue, ...], ...]
    complete: bool = True

    @property
    def settled(self) -> bool:
        """Is everything about it known: complete, and every field of every item given?"""
        return self.complete and all(value is not None for item in self.items for value in item)


Value = bool | Fraction | int | str | NoneValue | History
ItemValue = Value | None  # a history item's field: None when unknown


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
    def conversions(self) -> Mapping[Kind, tuple[Fraction, Fraction]]: ...
    @property
    def conversion_texts(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class SqlCell:
    """A table cell read in SQL (eligib/screen): `value` is the number, date, name or truth; `plain` is
    true when the cell is written in the plain form SQL reads exactly and holds a valid value (other
    cells go through `parse`); a number's canonical value is `value` x `factor`."""

    value: str
    plain: str
    factor: Fraction = Fraction(1)


def sql_number(fraction: Fraction) -> str:
    """A whole number as SQL (HUGEINT past 2**62); NULL past 10**37, beyond HUGEINT, so that what
    compares with it is unknown (eligib/screen then leaves the row to the engine). Never a quotient:
    callers cross-multiply."""
    assert fraction.denominator == 1, "SQL numbers here are whole; scale first"
    number = fraction.numerator
    if abs(number) >= 10**37:
        return "CAST(NULL AS HUGEINT)"
    return f"{number}::HUGEINT" if abs(number) >= 2**62 else str(number)


def sql_text(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_scaled_compare(value: str, op: str, bound: Fraction) -> str:
    """`value OP bound` for an exact DECIMAL `value` and a rational bound, by cross-multiplication (the
    denominator is positive); TRY: an overflow is unknown (NULL), never an error."""
    if bound.denominator == 1:
        return f"({value} {op} {sql_number(bound)})"
    return f"TRY({value} * {bound.denominator} {op} {sql_number(Fraction(bound.numerator))})"


class ValueType(ABC):
    """A kind of value. Subclasses answer every question about their values; see the module docstring."""

    def same_kind(self, other: ValueType) -> bool:
        """Can values of the two types be compared with each other?"""
        return type(self) is type(other)

    @abstractmethod
    def parse(self, raw: object, spec: FactSpec) -> Value:
        """A value as a patient file writes it -> the canonical value; ValueProblem when it is not one."""
        ...

    def doubt(self, raw: object) -> tuple[str, str] | None:
        """A value that reads, but may not mean what was written: (message, help) for a warning."""
        return None

    @abstractmethod
    def show(self, value: Value, unit: str | None = None) -> str:
        """A canonical value as a person reads it (in `unit`, or the type's own)."""
        ...

    @abstractmethod
    def to_file(self, value: Value) -> Any:
        """A canonical value as a facts file writes it (JSON)."""
        ...

    @abstractmethod
    def json_schema(self, spec: FactSpec) -> dict[str, Any]:
        ...

    @abstractmethod
    def z3_variable(self, name: str, ctx: Any) -> Any:
        ...

    def z3_term(self, var: Any) -> Any:
        """The variable as the canonical value's term (a scaled quantity, for numbers)."""
        return var

    @abstractmethod
    def z3_equals(self, var: Any, value: Value) -> Any:
        """The literal fixing the variable to a known canonical value."""
        ...

    def candidates(self, spec: FactSpec, constants: Sequence[Fraction], anchors: Sequence[int]) -> Sequence[Value]:
        """A few values in the fact's domain worth trying when looking for a completion of a patient that
        proves a claim (logic/samples.py): bounds, values at and beside the protocol's `constants`, points
        near the patient's own dates (`anchors`). Any values in the domain are correct; these find
        witnesses quickly. Empty: none tried (the solver decides alone)."""
        return []

    def z3_domain(self, var: Any, spec: FactSpec) -> list[Any]:
        """Constraints every value of the variable meets (declared range, enumeration size)."""
        return []

    def sql_cell(self, cell: str, spec: FactSpec) -> SqlCell | None:
        """How SQL reads a table cell (`cell`: a VARCHAR expression, not NULL) written in this type's plainest
        form, exactly as `parse` would. None: SQL reads no cell of this type; `from_text` and `parse` do."""
        return None

    def from_text(self, text: str) -> object:
        """A table cell's text as a patient file would write the value (what `parse` reads)."""
        return text

    def from_z3(self, term: Any) -> Value:
        """A model's value of the variable (a Z3 value term) -> the canonical value."""
        return self.from_model(z3_number(term))

    @abstractmethod
    def from_model(self, raw: Fraction | bool) -> Value:
        """A model's value of the variable, already read as a number (Int, Real) or a bool -> the canonical
        value (logic/models.py reads a whole model at once)."""
        ...

    @abstractmethod
    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        """A hypothesis strategy of canonical values (leaning on `constants`, the protocol's thresholds)."""
        ...


def shown(value_type: ValueType, value: Value, unit: str | None = None) -> str:
    """A canonical value as a person reads it, `none` included."""
    return "none" if value is NONE else value_type.show(value, unit)


class IrrationalValue(ValueError):
    """A model gives an irrational number (`x * x == 2`): no patient file can state it exactly."""


def z3_number(term: Any) -> Fraction | bool:
    """A Z3 value term (an Int, Real or Bool value) as a Python number or bool; IrrationalValue for an
    algebraic number that is not rational."""
    import z3

    if z3.is_true(term) or z3.is_false(term):
        return bool(z3.is_true(term))
    if z3.is_algebraic_value(term):
        raise IrrationalValue(f"an irrational value ({term})")
    return Fraction(term.as_long()) if z3.is_int_value(term) else Fraction(term.as_fraction())


def check_range(value: Fraction | int, spec: FactSpec, show: Any) -> None:
    low, high = spec.low, spec.high
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{show(low) if low is not None else '...'} to {show(high) if high is not None else '...'}"
        raise ValueProblem(f"{show(value)} is outside the declared range {bounds}", help="check the value and its unit")


def exact_or_problem(number: Decimal | BadNumber) -> Fraction:
    """A checked decimal as a Fraction; ValueProblem for a BadNumber."""
    try:
        return exact(number)
    except ValueError as exc:
        raise ValueProblem(str(exc), help="see docs/limits.md") from None


class ParsedSpec(FactSpec, Protocol):
    """A declared fact or history field: its spec, its type, and whether it may be `none`."""

    @property
    def type(self) -> ValueType: ...
    @property
    def optional(self) -> bool: ...


def parse_value(spec: ParsedSpec, raw: object) -> Value:
    """One raw value from a patient file -> an exact canonical value, or ValueProblem (its type says why)."""
    if isinstance(raw, str) and len(raw) > MAX_VALUE_TEXT:
        raise ValueProblem(f"the text is longer than {MAX_VALUE_TEXT} characters", help="see docs/limits.md")
    if isinstance(raw, BadNumber):
        raise ValueProblem(f"`{raw}` {raw.reason}", help="see docs/limits.md")
    if isinstance(raw, str) and raw.strip().lower() == "none":
        if not spec.optional:
            raise ValueProblem("`none` is not allowed", help=f"`{spec.name}` is not declared `or none`; leave it "
                                                              "out if it is unknown")
        return NONE
    return spec.type.parse(raw, spec)
