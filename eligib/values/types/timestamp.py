"""The date-time type: an instant, carried as whole seconds since 0001-01-01T00:00:00Z.

A patient file writes ISO 8601 with a time of day and an offset (`2026-11-28T09:30:00+01:00`, or `Z`);
the offset places the instant exactly, so values written in different zones compare correctly. A
value without an offset is refused: its instant would depend on where it was read. Seconds are
whole; the instant of day D at 00:00Z is D * 86400 (D a day number), so date bounds convert exactly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eligib.limits import EARLIEST_DATE, LATEST_DATE
from eligib.values.calendar import DAY_SECONDS, format_date
from eligib.values.types.base import FactSpec, Value, ValueProblem
from eligib.values.types.date import GENERATED_DATES, TimePointType
from eligib.values.units import parse_unit
from eligib.values.words import describe

ISO_DATE_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|z|[+-](0[0-9]|1[0-4]):?[0-5][0-9])$"
_WRITTEN = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|z|[+-]\d{2}:?\d{2})?", re.ASCII)
EXAMPLE = "2026-11-28T09:30:00+01:00"


def instant_of(day: int, hour: int = 0, minute: int = 0, second: int = 0, offset_seconds: int = 0) -> int:
    """The instant of a wall-clock time on day number `day` at a UTC offset."""
    return day * DAY_SECONDS + hour * 3600 + minute * 60 + second - offset_seconds


def step_seconds(amount: Fraction, unit: str | None) -> int:
    """A written step of a date-time (`72 hours`, `14 days`) in whole seconds: days are 24 hours."""
    seconds = amount * parse_unit(unit or "").factor
    assert seconds.denominator == 1, "the checker allows whole seconds only"
    return int(seconds)


def format_instant(instant: int) -> str:
    """ISO 8601 in UTC, seconds shown only when not zero: `2026-11-28T08:30Z`."""
    day, seconds = divmod(instant, DAY_SECONDS)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")
    return f"{format_date(day)}T{clock}Z"


def parse_instant(text: str) -> int:
    """ISO 8601 date-time with an offset -> instant; ValueProblem says what is missing or wrong."""
    found = _WRITTEN.fullmatch(text.strip())
    if found is None:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip(), re.ASCII):
            raise ValueProblem(f"`{text}` is a date without a time of day",
                               help=f"this fact is a date-time: write the time and the UTC offset, e.g. {EXAMPLE}")
        raise ValueProblem(f"expected a date-time, got `{text}`", help=f"write ISO 8601 with an offset: {EXAMPLE}")
    date_text, hour, minute, second, fraction, offset = found.groups()
    if fraction is not None:
        raise ValueProblem(f"`{text}` has a fraction of a second", help="date-times are in whole seconds")
    if offset is None:
        raise ValueProblem(f"`{text}` has no UTC offset, so its instant depends on where it is read",
                           help=f"add the offset (`Z` for UTC, `+01:00`...): {EXAMPLE}")
    try:
        day = dt.date.fromisoformat(date_text).toordinal()
        clock = dt.time(int(hour), int(minute), int(second or 0))
    except ValueError:
        raise ValueProblem(f"`{text}` is not a calendar date and time", help="check the month, day and hour") from None
    return instant_of(day, clock.hour, clock.minute, clock.second, _offset_seconds(offset, text))


def _offset_seconds(offset: str, text: str) -> int:
    if offset in ("Z", "z"):
        return 0
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 14 or minutes > 59 or (hours == 14 and minutes):
        raise ValueProblem(f"`{offset}` in `{text}` is not a UTC offset", help="offsets run from -14:00 to +14:00")
    return (1 if offset[0] == "+" else -1) * (hours * 3600 + minutes * 60)


@dataclass(frozen=True)
class DateTimeType(TimePointType):
    def __str__(self) -> str:
        return "a date-time"

    @property
    def day_length(self) -> int:
        return DAY_SECONDS

    def bounds(self, spec: FactSpec) -> tuple[int, int]:
        low = int(spec.low) if spec.low is not None else EARLIEST_DATE * DAY_SECONDS
        high = int(spec.high) if spec.high is not None else (LATEST_DATE + 1) * DAY_SECONDS - 1
        return low, high

    def parse(self, raw: object, spec: FactSpec) -> Value:
        if isinstance(raw, dt.datetime):  # from a YAML or TOML file: read as its ISO text, by the same rules
            if raw.utcoffset() is None:
                raise ValueProblem("the date-time has no UTC offset", help=f"write it with its offset: {EXAMPLE}")
            instant = parse_instant(raw.isoformat())
        elif isinstance(raw, str):
            instant = parse_instant(raw)
        else:
            raise ValueProblem(f"expected a date-time, got {describe(raw)}", help=f"write ISO 8601: {EXAMPLE}")
        return self.checked(instant, spec)

    def format(self, point: int) -> str:
        return format_instant(point)

    def json_schema(self, spec: FactSpec) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "pattern": ISO_DATE_TIME}

    def strategy(self, spec: FactSpec, constants: Sequence[Fraction] = ()) -> Any:
        """Instants on whole hours or minutes (they read well, and windows in hours meet their edges), in the
        declared range or the generated years."""
        from hypothesis import strategies as st

        low = int(spec.low) if spec.low is not None else GENERATED_DATES[0] * DAY_SECONDS
        high = int(spec.high) if spec.high is not None else GENERATED_DATES[1] * DAY_SECONDS
        return st.one_of(st.integers(-(-low // 3600), high // 3600).map(lambda hours: hours * 3600),
                         st.integers(-(-low // 60), high // 60).map(lambda minutes: minutes * 60))


DATETIME = DateTimeType()

