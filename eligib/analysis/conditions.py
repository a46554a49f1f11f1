"""The condition on one missing fact that keeps a patient eligible: the values for which some completion
of the other missing facts is eligible, stated as simply as the protocol's own words allow.

Exact by construction: thresholds.py finds every point where the fact can change a condition, the
verdict is constant between two of them, and the solver is asked once per piece (and once per enumeration
value, boolean, or `none`). A fact that shares a condition with another missing fact has no condition of
its own; the shared condition is stated instead (`joint`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil, floor
from typing import Any

from eligib.analysis.thresholds import Interacts, Thresholds
from eligib.language.checked import CheckedProtocol, FactInfo
from eligib.values.types import NONE, BoolType, DateTimeType, DateType, EnumType, NumType, Value, shown

Possible = Callable[[Mapping[str, Value]], bool]  # can these facts still lead to an eligible patient?


@dataclass(frozen=True)
class Interval:
    """Values from `low` to `high` (canonical; None: unbounded), each end included or not."""

    low: Any
    high: Any
    low_closed: bool = True
    high_closed: bool = True


@dataclass
class FactCondition:
    """What one missing fact must be for the patient to stay eligible."""

    fact: str
    eligible_if: str | None  # the condition in the protocol's words and units; None: every value can still do
    settles_alone: bool  # some value of this fact alone makes the patient ineligible
    joint: bool = False  # no condition of its own: it is compared with other facts in `shared`
    shared: list[str] = field(default_factory=list)  # for a joint fact: the conditions it shares (their text)
    interacts_with: list[str] = field(default_factory=list)  # other missing facts it shares conditions with
    values: list[str] = field(default_factory=list)  # an enumeration's or a boolean's qualifying values
    intervals: list[Interval] = field(default_factory=list)  # a number's or a date's qualifying ranges
    none_qualifies: bool = False  # `none` keeps the patient eligible (a fact declared `or none`)
    history: bool = False  # a list of items: no condition of its own (the criteria it decides say what matters)


def fact_condition(checked: CheckedProtocol, facts: Mapping[str, Value], fact: str,
                   possible: Possible) -> FactCondition:
    """The values of `fact` for which the patient can still be eligible, the other missing facts free."""
    info = checked.facts[fact]
    known = {name: value for name, value in facts.items() if name != fact}

    def qualifies(value: Value) -> bool:
        return possible({**known, fact: value})

    none_qualifies = info.optional and qualifies(NONE)
    match info.type:
        case BoolType():
            truths = [truth for truth in (True, False) if qualifies(truth)]
            words = [fact if truth else f"not {fact}" for truth in truths]
            return _listed(fact, [str(truth).lower() for truth in truths], words, 2, none_qualifies, info.optional)
        case EnumType(values=values):
            chosen = [value for value in values if qualifies(value)]
            words = [f"{fact} is {chosen[0]}"] if len(chosen) == 1 else [f"{fact} in ({', '.join(chosen)})"]
            return _listed(fact, chosen, words if chosen else [], len(values), none_qualifies, info.optional)
        case NumType() | DateType() | DateTimeType():
            return _on_a_line(checked, info, known, qualifies, none_qualifies)
        case _:  # a history: its items are conditions of their own (the criteria it decides say which)
            return FactCondition(fact, None, settles_alone=False, history=True)


def _listed(fact: str, chosen: list[str], words: list[str], total: int, none_qualifies: bool,
            optional: bool) -> FactCondition:
    if none_qualifies:
        words = [*words, f"{fact} is none"] if chosen else [f"{fact} is none"]
    every = len(chosen) == total and (none_qualifies or not optional)
    text = None if every else " or ".join(words) if words else "no value"
    return FactCondition(fact, text, settles_alone=not every, values=chosen, none_qualifies=none_qualifies)


def _on_a_line(checked: CheckedProtocol, info: FactInfo, known: Mapping[str, Value],
               qualifies: Callable[[Value], bool], none_qualifies: bool) -> FactCondition:
    """A number, date or date-time: one try per piece between the thresholds."""
    low, high = _domain(info)
    try:
        points = Thresholds(checked, known, info.name).find()
    except Interacts as shared:
        ends = [end for end in (low, high) if end is not None]
        settles = any(not qualifies(end) for end in ends) or (info.optional and not none_qualifies)
        texts = list(dict.fromkeys(checked.text(node) for node in shared.nodes))
        return FactCondition(info.name, None, settles_alone=settles, joint=True, shared=texts,
                             interacts_with=sorted(shared.others), none_qualifies=none_qualifies)
    grid = _grid(info)
    tried = [(interval, qualifies(value)) for interval, value in _pieces(points, low, high, grid)]
    intervals = _merged(tried, grid)
    whole = len(intervals) == 1 and intervals[0] == Interval(low, high, low is not None, high is not None)
    every = whole and (none_qualifies or not info.optional)
    words = [_interval_text(info, interval, low, high) for interval in intervals]
    if none_qualifies:
        words.append(f"{info.name} is none")
    text = None if every else " or ".join(words) if words else "no value"
    return FactCondition(info.name, text, settles_alone=not every, intervals=intervals, none_qualifies=none_qualifies)


def _domain(info: FactInfo) -> tuple[Any, Any]:
    """The values the fact may take; an integer fact's bounds moved inside to whole units (a range
    `from 200 months to 30 years` holds no 16.67 years)."""
    if isinstance(info.type, (DateType, DateTimeType)):
        return info.type.bounds(info)
    grid = _grid(info)
    low, high = info.low, info.high
    if grid is None:
        return low, high
    return (None if low is None else ceil(Fraction(low) / grid) * grid,
            None if high is None else floor(Fraction(high) / grid) * grid)


def _grid(info: FactInfo) -> Fraction | None:
    """The step between possible values: a whole unit of an integer fact, a day or a second; None: any."""
    if isinstance(info.type, NumType):
        return info.type.factor if info.type.integer else None
    return Fraction(1)


def _pieces(points: set[Any], low: Any, high: Any, grid: Fraction | None) -> list[tuple[Interval, Any]]:
    """The points and the open stretches between them, each with a value inside it, within the domain."""
    marks = set()
    for point in points:
        if grid is None:
            marks.add(Fraction(point))
        else:  # on a grid the truth can change only between two neighbouring grid values
            marks |= {floor(Fraction(point) / grid) * grid, ceil(Fraction(point) / grid) * grid}
    marks |= {end for end in (low, high) if end is not None}
    inside = sorted(m for m in marks if (low is None or m >= low) and (high is None or m <= high))
    if not inside:
        return [(Interval(None, None, False, False), Fraction(0))]
    step = grid if grid is not None else Fraction(1)
    found: list[tuple[Interval, Any]] = []
    if low is None:
        found.append((Interval(None, inside[0], False, False), inside[0] - step))
    for index, mark in enumerate(inside):
        found.append((Interval(mark, mark), mark))
        if index + 1 < len(inside):
            following = inside[index + 1]
            between = mark + step if grid is not None else (mark + following) / 2
            if between < following:
                found.append((Interval(mark, following, False, False), between))
    if high is None:
        found.append((Interval(inside[-1], None, False, False), inside[-1] + step))
    return [(interval, _native(value, grid)) for interval, value in found]


def _native(value: Fraction, grid: Fraction | None) -> Any:
    """Dates and date-times are whole numbers (day numbers, seconds); numbers are fractions."""
    return int(value) if grid == 1 and value.denominator == 1 else value


def _merged(tried: list[tuple[Interval, bool]], grid: Fraction | None) -> list[Interval]:
    """Neighbouring qualifying pieces joined; on a grid, open ends moved to the nearest grid value inside."""
    merged: list[Interval] = []
    previous = False
    for interval, good in tried:
        if good and previous:
            last = merged[-1]
            merged[-1] = Interval(last.low, interval.high, last.low_closed, interval.high_closed)
        elif good:
            merged.append(interval)
        previous = good
    if grid is None:
        return merged
    return [Interval(_native(i.low + (0 if i.low_closed else grid), grid) if i.low is not None else None,
                     _native(i.high - (0 if i.high_closed else grid), grid) if i.high is not None else None,
                     i.low is not None, i.high is not None) for i in merged]


def _interval_text(info: FactInfo, interval: Interval, low: Any, high: Any) -> str:
    """`lvef >= 45 %`, `18 years <= age <= 85 years`, `screening_date >= 2026-12-04`: the protocol's forms."""
    name = info.name
    from_low = interval.low is None or (interval.low == low and interval.low_closed)
    to_high = interval.high is None or (interval.high == high and interval.high_closed)

    def show(value: Any, upward: bool) -> str:
        return _bound_text(info, value, upward)

    if from_low and to_high:  # every number or date qualifies, but not `none` (else there is no condition)
        return f"{name} is not none"
    if from_low:
        return f"{name} {'<=' if interval.high_closed else '<'} {show(interval.high, False)}"
    if to_high:
        return f"{name} {'>=' if interval.low_closed else '>'} {show(interval.low, True)}"
    if interval.low == interval.high:
        return f"{name} == {_point_text(info, interval.low)}"
    return (f"{show(interval.low, True)} {'<=' if interval.low_closed else '<'} {name} "
            f"{'<=' if interval.high_closed else '<'} {show(interval.high, False)}")


def _point_text(info: FactInfo, value: Any) -> str:
    """A single qualifying value, exactly: a fraction of the unit where no decimal states it (`1/3`)."""
    text = shown(info.type, value)
    if not isinstance(info.type, NumType) or not text.startswith("~"):
        return text
    declared = Fraction(value) / info.type.factor
    unit = f" {info.type.unit}" if info.type.unit else ""
    return f"{declared.numerator}/{declared.denominator}{unit}"


PLACES = 6  # decimal places shown of a bound that does not terminate (`~`, rounded into the interval)


def _bound_text(info: FactInfo, value: Any, upward: bool) -> str:
    """A bound in the fact's unit. One whose decimals do not end is rounded into the interval (a lower
    bound up, an upper bound down) and marked `~`, so any value that meets the shown text qualifies."""
    if not isinstance(info.type, NumType):
        return shown(info.type, value)
    factor = info.type.factor
    declared = Fraction(value) / factor
    scaled = declared * 10**PLACES
    if scaled.denominator == 1 and shown(info.type, value)[:1] != "~":
        return shown(info.type, value)
    rounded = Fraction(ceil(scaled) if upward else floor(scaled), 10**PLACES)
    return "~" + shown(info.type, rounded * factor)


def nearest(info: FactInfo, condition: FactCondition, current: Value | None) -> Value | None:
    """The qualifying value closest to the current one (a boundary, one step inside an open one; with no
    current value, closest to zero or the first listed); None when the condition is not one of the fact's
    own (joint) or nothing qualifies."""
    if condition.joint:
        return None
    if condition.values:
        chosen = next((v for v in condition.values if v != str(current).lower()), condition.values[0]) \
            if current is not None else condition.values[0]
        return (chosen == "true") if isinstance(info.type, BoolType) else chosen
    if not condition.intervals:
        return NONE if condition.none_qualifies else None
    here = Fraction(current) if isinstance(current, (int, Fraction)) else Fraction(0)
    best: Fraction | None = None
    for interval in condition.intervals:
        point = here if _in(interval, here) else _writable(info, interval, upward=interval.low is not None and (
            interval.high is None or here < interval.low))
        if point is not None and (best is None or abs(point - here) < abs(best - here)):
            best = point
    return None if best is None else _native(best, _grid(info))


def _in(interval: Interval, value: Fraction) -> bool:
    above = interval.low is None or value > interval.low or (interval.low_closed and value == interval.low)
    below = interval.high is None or value < interval.high or (interval.high_closed and value == interval.high)
    return above and below


def _writable(info: FactInfo, interval: Interval, upward: bool) -> Fraction | None:
    """The value inside the interval nearest its lower (`upward`) or upper end that a facts file can
    state: the end itself when it is included and written in at most 6 decimals, else a whole step on a
    grid, else a hundredth of the declared unit (more decimals where the interval is narrower)."""
    end = interval.low if upward else interval.high
    if end is None:
        return None
    closed = interval.low_closed if upward else interval.high_closed
    grid = _grid(info)
    unit = info.type.factor if isinstance(info.type, NumType) else Fraction(1)
    if closed and (grid is None or (Fraction(end) / grid).denominator == 1) and \
            (Fraction(end) / unit * 10**PLACES).denominator == 1:
        return Fraction(end)
    steps = [grid] if grid is not None else [unit / 10**places for places in range(2, PLACES + 1)]
    for step in steps:
        candidate = (ceil(Fraction(end) / step) if upward else floor(Fraction(end) / step)) * step
        if candidate == end and not closed:
            candidate += step if upward else -step
        if _in(interval, candidate):
            return candidate
    return None
