"""Patient values as every stage sees them: exact, canonical, with `unknown` and `none` kept apart.

- a number is a Fraction in canonical base units (see units.py);
- a date is its proleptic Gregorian day number (date.toordinal());
- an enumeration value is its name; a boolean is a bool;
- NONE means the fact is known to have no value (test not done, event never happened);
- an unknown fact is simply absent (evaluators use None for it).
"""

from __future__ import annotations

import calendar
import datetime as dt
from fractions import Fraction
from typing import Union


class _NoneValue:
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NONE"

    def __reduce__(self):
        return (_NoneValue, ())


NONE = _NoneValue()
Value = Union[bool, Fraction, int, str, _NoneValue]

DAY_SECONDS = 86400


def shift_months(day_number: int, months: int) -> int:
    """Calendar month arithmetic: same day of month, clamped to the month's last day.

    2026-08-31 minus 6 months is 2026-02-28; 2024-02-29 plus 12 months is 2025-02-28.
    """
    date = dt.date.fromordinal(day_number)
    index = date.year * 12 + (date.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(date.day, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day).toordinal()


def shift_date(day_number: int, amount: Fraction, unit_code: str) -> int:
    """Add a written calendar duration (d, wk, mo, a) to a day number; amount may be negative."""
    if unit_code == "d":
        return day_number + int(amount)
    if unit_code == "wk":
        return day_number + int(amount * 7)
    if unit_code == "mo":
        return shift_months(day_number, int(amount))
    if unit_code == "a":
        return shift_months(day_number, int(amount) * 12)
    raise ValueError(f"not a calendar unit: {unit_code}")


def format_date(day_number: int) -> str:
    return dt.date.fromordinal(day_number).isoformat()
