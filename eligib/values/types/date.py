"""The date type: a calendar date, carried as its day number; the years a patient file may give are bounded."""

from __future__ import annotations

import datetime as dt
import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eligib.limits import EARLIEST_DATE, LATEST_DATE
from eligib.values.calendar import format_date
from eligib.values.types.base import FactSpec, SqlCell, Value, ValueProblem, ValueType, check_range
from eligib.values.words import describe

# Generated dates fall in these years unless the fact declares its own range (they read well).
GENERATED_DATES = (dt.date(2015, 1, 1).toordinal(), dt.date(2030, 12, 31).toordinal())
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


@dataclass(frozen=True)
class TimePointType(ValueType):
    """What dates and date-times share: a whole number on a time line (days, or seconds), bounded to
    the years a patient file may give unless the fact declares a range, an Int in Z3."""

    @abstractmethod
    def bounds(self, spec: FactSpec) -> tuple[int, int]:
        """The values a fact may take: the declared range, else the years every patient file may give."""

    @abstractmethod
    def format(self, point: int) -> str:
        """A point as ISO 8601 text."""

    def checked(self, point: int, spec: FactSpec) -> int:
        """A parsed point, refused outside the accepted years (no declared range) or the declared range."""
        low, high = self.bounds(spec)
        if (spec.low, spec.high) == (None, None) and not low <= point <= high:
            raise ValueProblem(f"{self.format(point)} is outside the dates accepted ({format_date(EARLIEST_DATE)} to "
                               f"{format_date(LATEST_DATE)})", help="check the year; a protocol that needs other "
                               "dates declares a range on the fact (docs/limits.md)")
        check_range(point, spec, self.format)
        return point

    def show(self, value: Value, unit: str | None = None) -> str:
        return self.format(_point(value))

    def to_file(self, value: Value) -> Any:
        return self.format(_point(value))

    def candidates(self, spec: FactSpec, constants: Sequence[Fraction], anchors: Sequence[int]) -> Sequence[Value]:
        """Points at and around the patient's own dates and times (inside and outside windows of days to
        a year), or the bounds when the patient gives none; always in the domain."""
        low, high = self.bounds(spec)
        day = self.day_length
        shifts = (0, -1, 1, -29 * day, 29 * day, -200 * day, 200 * day, -400 * day, 400 * day)
        tried = {anchor + shift for anchor in anchors for shift in shifts} | {low, high}
        return sorted(point for point in tried if low <= point <= high)

    @property
    @abstractmethod
    def day_length(self) -> int:
        """How many units of the time line a day is (1 for dates, 86,400 for date-times)."""

    def z3_variable(self, name: str, ctx: Any) -> Any:
        import z3

        return z3.Int(name, ctx)

    def z3_equals(self, var: Any, value: Value) -> Any:
        return var == _point(value)

    def z3_domain(self, var: Any, spec: FactSpec) -> list[Any]:
        low, high = self.bounds(spec)
        return [var >= low, var <= high]

    def from_model(self, raw: Fraction | bool) -> Value:
        return int(raw)


@dataclass(frozen=True)
class DateType(TimePointType):
    def __str__(self) -> str:
        return "a date"

    @property
    def day_length(self) -> int:
        return 1

    def bounds(self, spec: FactSpec) -> tuple[int, int]:
        low = int(spec.low) if spec.low is not None else EARLIEST_DATE
        high = int(spec.high) if spec.high is not None else LATEST_DATE
        return low, high

    def format(self, point: int) -> str:
        return format_date(point)

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
        return self.checked(day, spec)

    def json_schema(self, spec: FactSpec) -> dict[str, Any]:
        return {"type": "string", "format": "date", "pattern": ISO_DATE}

    def sql_cell(self, cell: str, spec: FactSpec) -> SqlCell | None:
        """YYYY-MM-DD, nothing around it, a real calendar date within the accepted or declared years."""
        value = f"TRY_CAST({cell} AS DATE)"
        low, high = self.bounds(spec)
        plain = f"coalesce(regexp_full_match({cell}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') AND {value} " \
                f"BETWEEN {sql_date(low)} AND {sql_date(high)}, FALSE)"
        return SqlCell(value, plain)

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        from hypothesis import strategies as st

        low = int(spec.low) if spec.low is not None else GENERATED_DATES[0]
        high = int(spec.high) if spec.high is not None else GENERATED_DATES[1]
        return st.integers(low, high)


DATE = DateType()


def sql_date(day: int) -> str:
    """A day number as a SQL DATE literal (years 1 to 9999)."""
    return f"DATE '{dt.date.fromordinal(day).isoformat()}'"


def _point(value: Value) -> int:
    assert isinstance(value, int) and not isinstance(value, bool), "a date's or date-time's value is a whole number"
    return value
