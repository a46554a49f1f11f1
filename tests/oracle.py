"""An independent oracle for the language's meaning, for the differential tests.

It shares nothing with eligib.logic (the evaluator, the compiler, the solver) or eligib.values.calendar:
it evaluates a checked protocol for one *complete* patient (every fact known), plainly and two-valued, with dates as
`datetime.date` and calendar months from Python's `calendar` module. A partial patient is judged
by trying completions: `verdicts_over(...)` enumerates a finite set of candidate values for each
missing fact (enumeration values, booleans, none, the protocol's own thresholds and the days around
them), so a claimed "eligible" or "ineligible" can be refuted by a single completion. Histories are read
as lists of items (queries over complete histories); an unknown history or item field is not
enumerated.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from fractions import Fraction
from typing import Any

from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.values.types import NONE, BoolType, DateTimeType, DateType, EnumType, History, ListType, NumType
from eligib.values.units import canonical_code, parse_unit

SECONDS_PER_DAY = 86400
FIRST_INSTANT = dt.datetime(1, 1, 1, tzinfo=dt.UTC)  # instant 86400: day number 1 at 00:00Z


def as_datetime(instant: int) -> dt.datetime:
    return FIRST_INSTANT + dt.timedelta(seconds=instant - SECONDS_PER_DAY)


def exact_duration(amount: Fraction, unit: str | None) -> dt.timedelta:
    """A date-time's step: days of 24 hours, hours, minutes, seconds (never months)."""
    seconds = {"wk": 7 * 24 * 3600, "d": 24 * 3600, "h": 3600, "min": 60, "s": 1}[canonical_code(unit or "")]
    return dt.timedelta(seconds=int(amount * seconds))


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day of the month, or the month's last day when it is shorter (2026-08-31 - 6 months = 2026-02-28)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def add_duration(day: dt.date, amount: Fraction, unit: str | None, sign: int) -> dt.date:
    code = canonical_code(unit or "")
    if code == "d":
        return day + dt.timedelta(days=sign * int(amount))
    if code == "wk":
        return day + dt.timedelta(days=sign * int(amount * 7))
    return add_months(day, sign * int(amount) * (12 if code == "a" else 1))


class Oracle:
    """The protocol's meaning for complete patients."""

    def __init__(self, checked: CheckedProtocol) -> None:
        self.checked = checked

    def outcome(self, patient: dict[str, Any]) -> tuple[str, dict[str, bool]] | None:
        """(verdict, each criterion passes) for a complete patient; None if it breaks an assumption."""
        facts = {name: self._as_date(name, value) for name, value in patient.items()}
        if not all(self.truth(assumption.body, facts) for assumption in self.checked.assumptions.values()):
            return None
        passes = {}
        for cid, criterion in self.checked.criteria.items():
            applies = criterion.guard is None or self.truth(criterion.guard, facts)
            holds = self.truth(criterion.body, facts)
            passes[cid] = (not applies or holds) if criterion.kind == "inclusion" else not (applies and holds)
        return ("eligible" if all(passes.values()) else "ineligible"), passes

    def _as_date(self, name: str, value: Any) -> Any:
        if isinstance(self.checked.facts[name].type, DateType) and value is not NONE:
            return dt.date.fromordinal(value)
        if isinstance(self.checked.facts[name].type, DateTimeType) and value is not NONE:
            return as_datetime(value)
        return value

    def truth(self, node: ast.Expr, facts: dict[str, Any]) -> bool:
        value = self.value(node, facts)
        return value is True  # a condition that is none is false

    def value(self, node: ast.Expr, facts: dict[str, Any]) -> Any:
        if isinstance(node, ast.BoolLiteral):
            return node.value
        if isinstance(node, ast.QuantityLiteral):
            return node.value * (parse_unit(node.unit).factor if node.unit else 1)
        if isinstance(node, ast.DateLiteral):
            return node.value
        if isinstance(node, ast.NameRef):
            if node.name in self.checked.definitions:
                return self.value(self.checked.definitions[node.name].body, facts)
            return facts[node.name]
        if isinstance(node, ast.Not):
            return not self.truth(node.operand, facts)
        if isinstance(node, ast.And):
            return all(self.truth(operand, facts) for operand in node.operands)
        if isinstance(node, ast.Or):
            return any(self.truth(operand, facts) for operand in node.operands)
        if isinstance(node, ast.Implies):
            return not self.truth(node.antecedent, facts) or self.truth(node.consequent, facts)
        if isinstance(node, ast.Compare):
            values = [self.value(operand, facts) for operand in node.operands]
            if any(v is NONE for v in values):
                return False
            tests = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
                     ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
            return all(tests[op](a, b) for op, a, b in zip(node.operators, values, values[1:]))
        if isinstance(node, ast.Arithmetic):
            return self.arithmetic(node, facts)
        if isinstance(node, ast.Negate):
            inner = self.value(node.operand, facts)
            return NONE if inner is NONE else -inner
        if isinstance(node, ast.Call):
            values = [self.value(arg, facts) for arg in node.args]
            if any(v is NONE for v in values):
                return NONE
            return min(values) if node.function == "min" else max(values)
        if isinstance(node, ast.Conditional):
            branch = node.then if self.truth(node.condition, facts) else node.otherwise
            return self.value(branch, facts)
        if isinstance(node, (ast.IsValue, ast.InSet)):
            subject = self.value(node.subject, facts)
            wanted = (node.value,) if isinstance(node, ast.IsValue) else node.values
            found = subject is not NONE and subject in wanted
            return found != node.negated
        if isinstance(node, ast.IsRanked):
            subject = self.value(node.subject, facts)
            enum = self.checked.types[node.subject.nid]
            return subject is not NONE and subject in node.among(enum.values)
        if isinstance(node, ast.IsNone):
            return (self.value(node.subject, facts) is NONE) != node.negated
        if isinstance(node, ast.Within):
            date, anchor = self.value(node.subject, facts), self.value(node.anchor, facts)
            if date is NONE or anchor is NONE:
                return False
            sign = -1 if node.direction == "before" else 1
            if isinstance(anchor, dt.datetime):
                other = anchor + sign * exact_duration(node.amount.value, node.amount.unit)
            else:
                other = add_duration(anchor, node.amount.value, node.amount.unit, sign)
            low, high = (other, anchor) if sign < 0 else (anchor, other)
            return low <= date <= high
        if isinstance(node, ast.Block):
            held = sum(1 for item in node.items if self.truth(item.body, facts))
            needed = {"any": 1, "all": len(node.items)}.get(node.kind, node.count)
            return held >= needed
        if isinstance(node, ast.InValueSet):
            subject = self.value(node.subject, facts)
            found = subject is not NONE and subject in self.checked.value_sets[node.value_set].members
            return found != node.negated
        if isinstance(node, ast.Query):
            return self.query(node, facts)
        raise AssertionError(f"the oracle does not know {type(node).__name__}")

    def query(self, node: ast.Query, facts: dict[str, Any]) -> Any:
        """A question about a complete history: the items whose `where` holds (with the item's fields
        hiding the patient's facts), then what the query asks of them."""
        list_type = self.checked.facts[node.collection].type
        history = facts[node.collection]
        assert isinstance(list_type, ListType) and isinstance(history, History) and history.settled
        items = [{spec.name: self._as_field(spec, value) for spec, value in zip(list_type.fields, item)}
                 for item in history.items]
        chosen = [item for item in items if node.where is None or self.truth(node.where, {**facts, **item})]
        kind = node.kind
        if kind in (ast.QueryKind.ANY, ast.QueryKind.NO, ast.QueryKind.EVERY, ast.QueryKind.COUNT):
            return {"any": bool(chosen), "no": not chosen, "every": len(chosen) == len(items),
                    "count": len(chosen)}[kind]
        assert node.field is not None
        if kind in (ast.QueryKind.LATEST, ast.QueryKind.EARLIEST):
            return self._by_order(chosen, list_type.order, latest=kind == ast.QueryKind.LATEST, field=node.field)
        present = [item[node.field] for item in chosen if item[node.field] is not NONE]
        if kind == ast.QueryKind.SUM:
            return sum(present, Fraction(0))
        if not present:
            return NONE
        return min(present) if kind == ast.QueryKind.MIN else max(present)

    @staticmethod
    def _by_order(items: list[dict[str, Any]], order: str | None, latest: bool, field: str) -> Any:
        """Field of the latest (last listed among equals) or earliest (first listed) ordered item."""
        assert order is not None
        best: dict[str, Any] | None = None
        for item in items:
            key = item[order]
            if key is NONE:
                continue
            if best is None or (key >= best[order] if latest else key < best[order]):
                best = item
        return NONE if best is None else best[field]

    @staticmethod
    def _as_field(spec: Any, value: Any) -> Any:
        if isinstance(spec.type, DateType) and value is not NONE:
            return dt.date.fromordinal(value)
        if isinstance(spec.type, DateTimeType) and value is not NONE:
            return as_datetime(value)
        return value

    def arithmetic(self, node: ast.Arithmetic, facts: dict[str, Any]) -> Any:
        result = self.value(node.operands[0], facts)
        for operator, operand in zip(node.operators, node.operands[1:]):
            if result is NONE:
                return NONE
            if isinstance(result, dt.datetime) and isinstance(operand, ast.QuantityLiteral):
                result += (1 if operator == "+" else -1) * exact_duration(operand.value, operand.unit)
                continue
            if isinstance(result, dt.date) and isinstance(operand, ast.QuantityLiteral):  # date +- a duration
                result = add_duration(result, operand.value, operand.unit, 1 if operator == "+" else -1)
                continue
            right = self.value(operand, facts)
            if right is NONE or (operator == "/" and right == 0):
                return NONE
            if isinstance(result, dt.datetime):  # date-time - date-time: seconds
                result = Fraction(int((result - right).total_seconds()))
            elif isinstance(result, dt.date):  # date - date: a duration, in seconds
                result = Fraction((result - right).days * SECONDS_PER_DAY)
            elif operator == "+":
                result = result + right
            elif operator == "-":
                result = result - right
            elif operator == "*":
                result = result * right
            else:
                result = Fraction(result) / right
        return result


# ------------------------------------------------------------------ completions of a partial patient


def candidates(checked: CheckedProtocol, name: str, anchors: list[int]) -> list[Any]:
    """A small set of values for one fact that reaches every boundary the protocol draws."""
    info = checked.facts[name]
    kind = info.type
    found: list[Any] = []
    if isinstance(kind, BoolType):
        found = [True, False]
    elif isinstance(kind, EnumType):
        found = list(kind.values)
    elif isinstance(kind, DateType):
        found = sorted({day for anchor in anchors if anchor < 10**8 for day in _dates_around(checked, anchor)})
    elif isinstance(kind, DateTimeType):
        found = sorted({moment for anchor in instant_anchors(checked, anchors) for moment in
                        _instants_around(checked, anchor)})
    elif isinstance(kind, NumType):
        found = sorted(_numbers_around(checked, kind))
    found = [value for value in found if _in_range(info, value)]
    return found + ([NONE] if info.optional else [])


def _in_range(info, value: Any) -> bool:
    low, high = info.low, info.high
    if isinstance(info.type, DateType) and low is None and high is None:
        low, high = dt.date(1900, 1, 1).toordinal(), dt.date(2200, 12, 31).toordinal()
    if isinstance(info.type, DateTimeType) and low is None and high is None:
        low, high = dt.date(1900, 1, 1).toordinal() * SECONDS_PER_DAY, dt.date(2201, 1, 1).toordinal() * SECONDS_PER_DAY
    return (low is None or value >= low) and (high is None or value <= high)


def _dates_around(checked: CheckedProtocol, anchor: int) -> set[int]:
    """The anchor, and the days on either side of each window the protocol counts from it."""
    days = {anchor}
    for node in _all_nodes(checked):
        amount = node.amount if isinstance(node, ast.Within) else node if isinstance(node, ast.QuantityLiteral) \
            and canonical_code(node.unit or "") in ("d", "wk", "mo", "a") else None
        if amount is None:
            continue
        for sign in (-1, 1):
            edge = add_duration(dt.date.fromordinal(anchor), amount.value, amount.unit, sign).toordinal()
            days |= {edge - 1, edge, edge + 1}
    return days


def instant_anchors(checked: CheckedProtocol, anchors: list[int]) -> list[int]:
    """Date-time anchors: those given (instants are far larger than day numbers), else noon mid-range."""
    given = [a for a in anchors if a > 10**8]
    return given or [dt.date(2026, 6, 15).toordinal() * SECONDS_PER_DAY + 43200]


def _instants_around(checked: CheckedProtocol, anchor: int) -> set[int]:
    """The anchor, and the seconds on either side of each exact step the protocol counts from it."""
    moments = {anchor}
    for node in _all_nodes(checked):
        if isinstance(node, ast.QuantityLiteral) and canonical_code(node.unit or "") in ("d", "wk", "h", "min", "s"):
            step = int(exact_duration(node.value, node.unit).total_seconds())
            for edge in (anchor - step, anchor + step):
                moments |= {edge - 1, edge, edge + 1}
    return moments


def _numbers_around(checked: CheckedProtocol, kind: NumType) -> set[Fraction]:
    """The protocol's constants of this kind, scaled by the small factors it uses, and just either side."""
    constants = {Fraction(0)}
    factors = {Fraction(1)}
    for node in _all_nodes(checked):
        if isinstance(node, ast.QuantityLiteral):
            if node.unit is None:
                factors.add(node.value)
            elif parse_unit(node.unit).kind == kind.kind:
                constants.add(node.value * parse_unit(node.unit).factor)
    step = parse_unit(kind.unit).factor if kind.unit else Fraction(1)
    nudge = step if kind.integer else step / 100
    found = set()
    for constant in constants:
        for factor in factors:
            for value in (constant * factor, constant / factor if factor else constant):
                found |= {value - nudge, value, value + nudge}
    if kind.integer:
        found = {Fraction(round(value / step)) * step for value in found}
    return found


def _all_nodes(checked: CheckedProtocol) -> list[ast.Expr]:
    stack: list[ast.Expr] = [c.body for c in checked.criteria.values()]
    stack += [c.guard for c in checked.criteria.values() if c.guard is not None]
    stack += [d.body for d in checked.definitions.values()]
    found = []
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(ast.children(node))
        if isinstance(node, ast.Within):
            found.append(node.amount)
    return found


def verdicts_over(checked: CheckedProtocol, partial: dict[str, Any], limit: int = 4000) -> set[str] | None:
    """The verdicts of every candidate completion of a partial patient (None when there are more than
    `limit` of them to try)."""
    oracle = Oracle(checked)
    missing = sorted(set(checked.facts) - set(partial))
    if any(isinstance(checked.facts[name].type, ListType) for name in missing) or \
            any(isinstance(value, History) and not value.settled for value in partial.values()):
        return None  # histories are not enumerated: the solver's completions are judged instead
    anchors = sorted({value for name, value in partial.items()
                      if isinstance(checked.facts[name].type, DateType) and value is not NONE}) \
        or [dt.date(2026, 6, 15).toordinal()]
    anchors += sorted({value for name, value in partial.items()
                       if isinstance(checked.facts[name].type, DateTimeType) and value is not NONE})
    choices = [candidates(checked, name, anchors) for name in missing]
    total = 1
    for options in choices:
        total *= max(len(options), 1)
    if total > limit:
        return None
    verdicts = set()
    for values in itertools.product(*choices):
        outcome = oracle.outcome({**partial, **dict(zip(missing, values))})
        if outcome is not None:
            verdicts.add(outcome[0])
    return verdicts


def assert_program_matches_reference(checked, partial) -> None:
    """The compiled Kleene program (logic/kleene.py) gives every criterion and assumption the reference
    evaluator's three-valued answer for this patient (any facts missing)."""
    from eligib.logic.evaluate import Evaluator, criterion_outcome
    from eligib.logic.kleene import KleeneProgram

    program, reference = KleeneProgram.of(checked), Evaluator(checked, partial)
    expected = {cid: criterion_outcome(reference, c)[::2] for cid, c in checked.criteria.items()}
    assert program.outcomes(partial) == expected
    assert [condition(partial, None) for _, condition in program.assumptions] == \
        [reference.condition(a.body) for a in checked.assumptions.values()]
