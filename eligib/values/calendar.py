"""Calendar arithmetic on day numbers, exact and total.

Dates are proleptic Gregorian day numbers as `date.toordinal()` gives them (0001-01-01 is 1). The
arithmetic is integer-only and total, so a window of 3000 years or a date before year 1 is a number
like any other, never a crash; only display needs a real calendar date. Calendar months keep the day
of the month, clamped to the target month's last day (2026-08-31 minus 6 months is 2026-02-28).
"""

from __future__ import annotations

import calendar
from fractions import Fraction
from functools import cache

DAY_SECONDS = 86400


_EPOCH_SHIFT = 719468 - 719163  # day numbers -> days since 0000-03-01 (a leap cycle starts there)



def civil_from_day(day_number: int) -> tuple[int, int, int]:
    """(year, month, day) of any day number, for any integer year (H. Hinnant's civil algorithm)."""
    shifted = day_number + _EPOCH_SHIFT
    era, day_of_era = divmod(shifted, 146097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153  # March is 0
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    return year_of_era + era * 400 + (month <= 2), month, day


def day_from_civil(year: int, month: int, day: int) -> int:
    """The day number of a calendar date, for any integer year; the inverse of civil_from_day."""
    year -= month <= 2
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - _EPOCH_SHIFT


def is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def month_length(year: int, month: int) -> int:
    if month == 2:
        return 29 if is_leap_year(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def add_months(year: int, month: int, months: int) -> tuple[int, int]:
    """The (year, month) that lies `months` calendar months after (year, month)."""
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def shift_months(day_number: int, months: int) -> int:
    """Calendar month arithmetic: same day of month, clamped to the month's last day.

    2026-08-31 minus 6 months is 2026-02-28; 2024-02-29 plus 12 months is 2025-02-28.
    """
    year, month, day = civil_from_day(day_number)
    target_year, target_month = add_months(year, month, months)
    return day_from_civil(target_year, target_month, min(day, month_length(target_year, target_month)))


def shift_pieces(day_number: int, months: int) -> list[tuple[int, int, int, int]]:
    """`shift_months(x, months)` for every x in the month of `day_number`, as linear pieces.

    Each piece is (first day, last day, slope, intercept), the shift being slope * x + intercept:
    days that exist in the target month keep their day of month (slope 1); the days past the target
    month's end clamp to its last day (slope 0). The solver learns a whole month per lemma."""
    year, month, _ = civil_from_day(day_number)
    first, length = day_from_civil(year, month, 1), month_length(year, month)
    target_year, target_month = add_months(year, month, months)
    target_first, target_length = day_from_civil(target_year, target_month, 1), month_length(target_year, target_month)
    pieces = [(first, first + min(length, target_length) - 1, 1, target_first - first)]
    if length > target_length:
        pieces.append((first + target_length, first + length - 1, 0, target_first + target_length - 1))
    return pieces


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
    """ISO 8601; years outside 0000-9999 in the expanded form (`+12026-01-01`, `-0001-12-31`)."""
    year, month, day = civil_from_day(day_number)
    if 0 <= year <= 9999:
        return f"{year:04d}-{month:02d}-{day:02d}"
    return f"{'+' if year > 0 else '-'}{abs(year):05d}-{month:02d}-{day:02d}"


_CYCLE_MONTHS = 4800  # the Gregorian calendar repeats every 400 years
_CYCLE_DAYS = 146097


@cache
def _month_lengths() -> tuple[tuple[int, ...], tuple[int, ...]]:
    lengths = tuple(calendar.monthrange(2000 + i // 12, i % 12 + 1)[1] for i in range(_CYCLE_MONTHS))
    starts = [0]
    for length in lengths:
        starts.append(starts[-1] + length)
    return lengths, tuple(starts)


def _day_of_month_index(index: int) -> int:
    """Days from the start of the cycle to the first of month `index` (any integer)."""
    starts = _month_lengths()[1]
    cycles, rest = divmod(index, _CYCLE_MONTHS)
    return cycles * _CYCLE_DAYS + starts[rest]


@cache
def month_shift_bounds(months: int) -> tuple[int, int]:
    """The fewest and most days that a shift by `months` calendar months can span, over every start date.

    Exact (the hull of all cases, day-of-month clamping included), from one 400-year cycle: the solver
    uses it when the anchor date is unknown, so its answers stay sound and as tight as the calendar."""
    lengths = _month_lengths()[0]
    spans = []
    for index in range(_CYCLE_MONTHS):
        target = index + months
        target_length = lengths[target % _CYCLE_MONTHS]
        whole = _day_of_month_index(target) - _day_of_month_index(index)
        for day in (1, 29, 30, 31):
            if day <= lengths[index]:
                spans.append(abs(whole + min(day, target_length) - day))
    return min(spans), max(spans)
