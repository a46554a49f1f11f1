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
from functools import lru_cache
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


_CYCLE_MONTHS = 4800  # the Gregorian calendar repeats every 400 years
_CYCLE_DAYS = 146097


@lru_cache(maxsize=None)
def _month_lengths() -> tuple[tuple[int, ...], tuple[int, ...]]:
    lengths = tuple(calendar.monthrange(2000 + i // 12, i % 12 + 1)[1] for i in range(_CYCLE_MONTHS))
    starts = [0]
    for length in lengths:
        starts.append(starts[-1] + length)
    return lengths, tuple(starts)


def _day_of_month_index(index: int) -> int:
    """Days from the start of the cycle to the first of month `index` (any integer)."""
    lengths, starts = _month_lengths()
    cycles, rest = divmod(index, _CYCLE_MONTHS)
    return cycles * _CYCLE_DAYS + starts[rest]


@lru_cache(maxsize=None)
def month_shift_bounds(months: int) -> tuple[int, int]:
    """The fewest and most days that a shift by `months` calendar months can span, over every start date.

    Exact (the hull of all cases, day-of-month clamping included), from one 400-year cycle: the solver
    uses it when the anchor date is unknown, so its answers stay sound and as tight as the calendar."""
    lengths, _ = _month_lengths()
    spans = []
    for index in range(_CYCLE_MONTHS):
        target = index + months
        target_length = lengths[target % _CYCLE_MONTHS]
        whole = _day_of_month_index(target) - _day_of_month_index(index)
        for day in (1, 29, 30, 31):
            if day <= lengths[index]:
                spans.append(abs(whole + min(day, target_length) - day))
    return min(spans), max(spans)
