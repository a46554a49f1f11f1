"""Exact numbers: decimals as written, taken exactly or refused by the limits, and shown exactly.

A number from a patient file, a case file or a FHIR bundle is read here, never as a binary float.
One past the limits (docs/limits.md) is not an error yet: it becomes a BadNumber, which whoever reads
the value reports with the fact it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from eligib.limits import MAX_NUMBER_DIGITS, MAX_NUMBER_EXPONENT


@dataclass(frozen=True)
class BadNumber:
    """A number as written that cannot be taken exactly within the limits (docs/limits.md)."""

    text: str
    reason: str

    def __str__(self) -> str:
        return self.text if len(self.text) <= 40 else self.text[:37] + "..."


def decimal_or_bad(text: str) -> Decimal | BadNumber:
    """A decimal written as text, checked against the number limits."""
    if len(text) > 4 * MAX_NUMBER_DIGITS:
        return BadNumber(text, f"has more than {MAX_NUMBER_DIGITS} digits")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return BadNumber(text, "is not a number")
    return within_limits(number, text)


def within_limits(number: Decimal, written: str | None = None) -> Decimal | BadNumber:
    """The number itself, or a BadNumber (quoting it as `written`) when it is past the limits."""
    shown = written if written is not None else str(number)
    if not number.is_finite():
        return BadNumber(shown, "is not a finite number")
    digits = number.as_tuple().digits
    if len(digits) > MAX_NUMBER_DIGITS:
        return BadNumber(shown, f"has more than {MAX_NUMBER_DIGITS} significant digits")
    if number and not -MAX_NUMBER_EXPONENT <= number.adjusted() <= MAX_NUMBER_EXPONENT:
        return BadNumber(shown, f"is beyond the number limits (1e-{MAX_NUMBER_EXPONENT} to 1e{MAX_NUMBER_EXPONENT})")
    return number if number else Decimal(0)


def exact(number: Decimal | BadNumber) -> Fraction:
    """A checked decimal as a Fraction; ValueError (with the reason) for a BadNumber."""
    if isinstance(number, BadNumber):
        raise ValueError(f"`{number}` {number.reason}")
    return Fraction(number)


def format_decimal(value: Fraction, max_places: int = 6) -> str:
    """Exact decimal when it terminates within max_places, else rounded with a `~`."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole, rest = divmod(value.numerator, value.denominator)
    digits = []
    for _ in range(max_places):
        if rest == 0:
            break
        rest *= 10
        digit, rest = divmod(rest, value.denominator)
        digits.append(str(digit))
    text = f"{sign}{whole}" + (f".{''.join(digits)}" if digits else "")
    return text if rest == 0 else f"~{text}"
