"""A plain-Python evaluator of the checked AST in three-valued (Kleene) logic.

It is exact wherever it gives a definite answer, so it decides every criterion whose facts are
known; where it says unknown (None), the solver decides. It is also a reference the Z3 compilation
is checked against. Values are canonical (values/types.py); None means unknown.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from fractions import Fraction
from typing import Any, assert_never

from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.values.calendar import DAY_SECONDS, shift_date
from eligib.values.types import NONE, DateTimeType, DateType, EnumType, History, ItemValue, ListType, Value
from eligib.values.types.timestamp import step_seconds
from eligib.values.units import canonical_code, to_canonical

COMPARATORS: dict[ast.Comparator, Callable[[Any, Any], bool]] = {
    ast.Comparator.LT: operator.lt, ast.Comparator.LE: operator.le, ast.Comparator.GT: operator.gt,
    ast.Comparator.GE: operator.ge, ast.Comparator.EQ: operator.eq, ast.Comparator.NE: operator.ne}
Truth = bool | None  # None: unknown


class Verdict(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    UNDETERMINED = "undetermined"
    PENDING = "pending"  # only at a time point: eligible so far, with criteria still to assess later


def literal_value(literal: ast.QuantityLiteral) -> Fraction:
    return to_canonical(literal.value, literal.unit)


def kleene_and(values: Iterable[Truth]) -> Truth:
    result: Truth = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def kleene_or(values: Iterable[Truth]) -> Truth:
    result: Truth = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def negate(value: Truth) -> Truth:
    return None if value is None else not value


class Evaluator:
    """Evaluates nodes for one patient, remembering every node's value (by node id) for the explanation."""

    def __init__(self, checked: CheckedProtocol, facts: Mapping[str, Value],
                 item: Mapping[str, ItemValue] | None = None) -> None:
        self.checked = checked
        self.facts = facts
        self.item = item  # the history item a query's `where` reads, by field
        self.values: dict[int, Any] = {}
        # for each query node: every listed item's index with its match (True/False/None), for explanations
        self.matches: dict[int, list[tuple[int, Truth]]] = {}

    def eval(self, node: ast.Expr) -> Any:
        if node.nid not in self.values:
            self.values[node.nid] = self._eval(node)
        return self.values[node.nid]

    def _eval(self, node: ast.Expr) -> Any:
        match node:
            case ast.BoolLiteral():
                return node.value
            case ast.QuantityLiteral():
                return literal_value(node)
            case ast.DateLiteral():
                return node.value.toordinal()
            case ast.NameRef() if node.nid in self.checked.field_refs:
                assert self.item is not None, "a field is read only inside a query's `where`"
                value = self.item[node.name]
                return value
            case ast.NameRef():
                if node.name in self.checked.definitions:
                    return self.eval(self.checked.definitions[node.name].body)
                return self.facts.get(node.name)
            case ast.Call():
                return self.extremum(node)
            case ast.Not():
                return negate(self.condition(node.operand))  # a none condition is false, so `not` of it is true
            case ast.And():
                return kleene_and(self.condition(op) for op in node.operands)
            case ast.Or():
                return kleene_or(self.condition(op) for op in node.operands)
            case ast.Compare():
                return kleene_and(self.link(node, i) for i in range(len(node.operators)))
            case ast.Arithmetic():
                return self.arithmetic(node)
            case ast.Negate():
                inner = self.eval(node.operand)
                return inner if inner is None or inner is NONE else -inner
            case ast.Conditional():
                return self.conditional(node)
            case ast.Implies():
                return kleene_or([negate(self.condition(node.antecedent)), self.condition(node.consequent)])
            case ast.IsValue():
                return self.membership(node.subject, (node.value,), node.negated)
            case ast.InSet():
                return self.membership(node.subject, node.values, node.negated)
            case ast.IsRanked():
                return self.membership(node.subject, node.among(self.enum_values(node.subject)), False)
            case ast.IsNone():
                subject = self.eval(node.subject)
                return None if subject is None else (subject is NONE) != node.negated
            case ast.Within():
                return self.within(node)
            case ast.Block():
                return self.block(node)
            case ast.InValueSet():
                return self.membership(node.subject, self.checked.value_sets[node.value_set].members, node.negated)
            case ast.Query():
                return self.query(node)
            case _:
                assert_never(node)

    def query(self, node: ast.Query) -> Any:
        """Three-valued answer over the listed items; an unknown or incomplete list leaves most answers open."""
        history = self.facts.get(node.collection)
        if history is None:
            return None
        assert isinstance(history, History)
        list_type = self.checked.facts[node.collection].type
        assert isinstance(list_type, ListType)
        names = [f.name for f in list_type.fields]
        matches: list[tuple[int, Truth]] = []
        for index, item in enumerate(history.items):
            if node.where is None:
                matches.append((index, True))
                continue
            inner = Evaluator(self.checked, self.facts, {**(self.item or {}), **dict(zip(names, item, strict=True))})
            matches.append((index, inner.condition(node.where)))
        self.matches[node.nid] = matches
        truths = [truth for _, truth in matches]
        open_ended = not history.complete or None in truths
        match node.kind:
            case ast.QueryKind.ANY | ast.QueryKind.NO:
                found: Truth = True if True in truths else None if open_ended else False
                return found if node.kind == ast.QueryKind.ANY else negate(found)
            case ast.QueryKind.EVERY:
                return False if False in truths else None if open_ended else True
            case ast.QueryKind.COUNT:
                return None if open_ended else Fraction(truths.count(True))
            case _:
                if open_ended:
                    return None
                chosen = [history.items[i] for i, truth in matches if truth]
                return aggregate(node.kind, list_type, chosen, node.field or "")

    @staticmethod
    def truth(value: Any) -> Truth:
        """A condition's truth: an optional boolean that is none counts as false."""
        if value is NONE:
            return False
        assert value is None or isinstance(value, bool), "a condition's value is a truth"
        return value

    def condition(self, node: ast.Expr) -> Truth:
        return self.truth(self.eval(node))

    def extremum(self, node: ast.Call) -> Any:
        if node.function in self.checked.tables:
            return self.lookup(node)
        values = [self.eval(arg) for arg in node.args]
        if any(v is NONE for v in values):
            return NONE
        if any(v is None for v in values):
            return None
        return min(values) if node.function == "min" else max(values)

    def lookup(self, node: ast.Call) -> Any:
        key = self.eval(node.args[0])
        if key is None or key is NONE:
            return key
        return table_value(self.checked.tables[node.function], key)

    def conditional(self, node: ast.Conditional) -> Any:
        condition = self.condition(node.condition)
        if condition is True:
            return self.eval(node.then)
        if condition is False:
            return self.eval(node.otherwise)
        then, otherwise = self.eval(node.then), self.eval(node.otherwise)
        return then if then is not None and then == otherwise else None

    def link(self, node: ast.Compare, index: int) -> Truth:
        left, right = self.eval(node.operands[index]), self.eval(node.operands[index + 1])
        if left is NONE or right is NONE:
            return False
        if left is None or right is None:
            return None
        return COMPARATORS[node.operators[index]](left, right)

    def arithmetic(self, node: ast.Arithmetic) -> Any:
        values = [self.eval(op) for op in node.operands]
        if any(v is NONE for v in values):
            return NONE
        if any(v is None for v in values):
            return None
        result = values[0]
        result_is_date = isinstance(self.checked.type_of(node.operands[0]), DateType)
        result_is_instant = isinstance(self.checked.type_of(node.operands[0]), DateTimeType)
        for op, operand_node, value in zip(node.operators, node.operands[1:], values[1:], strict=True):
            operand_is_date = isinstance(self.checked.type_of(operand_node), DateType)
            if result_is_instant:  # instant - instant: seconds; instant +- a written duration: an instant
                assert isinstance(result, int) and isinstance(value, (int, Fraction))
                if isinstance(self.checked.type_of(operand_node), DateTimeType):
                    result, result_is_instant = Fraction(result - value), False
                else:
                    assert isinstance(operand_node, ast.QuantityLiteral)
                    seconds = step_seconds(operand_node.value, operand_node.unit)
                    result += seconds if op == ast.Operator.ADD else -seconds
            elif result_is_date and operand_is_date:  # date - date: a duration in canonical seconds
                result, result_is_date = Fraction((result - value) * DAY_SECONDS), False
            elif result_is_date:
                assert isinstance(operand_node, ast.QuantityLiteral)
                amount = operand_node.value if op == ast.Operator.ADD else -operand_node.value
                result = shift_date(result, amount, canonical_code(operand_node.unit or ""))
            elif op == ast.Operator.DIVIDE and value == 0:
                return NONE  # a quotient by zero has no value (the compiler says the same)
            else:
                result = op.apply(result, value)
        return result

    def enum_values(self, subject_node: ast.Expr) -> tuple[str, ...]:
        enum = self.checked.types[subject_node.nid]
        assert isinstance(enum, EnumType)
        return enum.values

    def membership(self, subject_node: ast.Expr, values: tuple[str, ...], negated: bool) -> Truth:
        subject = self.eval(subject_node)
        if subject is None:
            return None
        found = subject is not NONE and subject in values
        return found != negated

    def within(self, node: ast.Within) -> Truth:
        date, anchor = self.eval(node.subject), self.eval(node.anchor)
        if date is NONE or anchor is NONE:
            return False
        if date is None or anchor is None:
            return None
        low, high = window(anchor, node, isinstance(self.checked.type_of(node.anchor), DateTimeType))
        return bool(low <= date <= high)

    def block(self, node: ast.Block) -> Truth:
        items = [self.condition(item.body) for item in node.items]
        match node.kind:
            case ast.BlockKind.ALL:
                return kleene_and(items)
            case ast.BlockKind.ANY:
                return kleene_or(items)
            case ast.BlockKind.AT_LEAST:
                true, unknown = items.count(True), items.count(None)
                if true >= node.count:
                    return True
                return False if true + unknown < node.count else None
            case _:
                assert_never(node.kind)


def aggregate(kind: ast.QueryKind, list_type: ListType, items: list[tuple[ItemValue, ...]], field: str) -> Any:
    """min / max / sum of a field, or the field of the latest / earliest item, over the matching items;
    None when an unknown value could change it, NONE when no item has a value."""
    at = list_type.field_index(field)
    if kind in (ast.QueryKind.LATEST, ast.QueryKind.EARLIEST):
        assert list_type.order is not None
        order = list_type.field_index(list_type.order)
        if any(item[order] is None for item in items):
            return None
        dated = [item for item in items if item[order] is not NONE]
        if not dated:
            return NONE
        latest = kind == ast.QueryKind.LATEST
        best = dated[0]
        for item in dated[1:]:  # ties: the latest goes to the item listed last, the earliest to the first
            key, best_key = item[order], best[order]
            if (key >= best_key) if latest else (key < best_key):  # type: ignore[operator]
                best = item
        return best[at]
    values = [item[at] for item in items]
    if any(value is None for value in values):
        return None
    present = [value for value in values if value is not NONE]
    if kind == ast.QueryKind.SUM:
        return sum((value for value in present if isinstance(value, Fraction)), Fraction(0))
    if not present:
        return NONE
    return min(present) if kind == ast.QueryKind.MIN else max(present)  # type: ignore[type-var]


def window(anchor: int, node: ast.Within, instants: bool = False) -> tuple[int, int]:
    """The inclusive window of `within AMOUNT before|after ANCHOR`: day numbers, or instants when the
    anchor is a date-time (then days are 24 hours)."""
    if instants:
        seconds = step_seconds(node.amount.value, node.amount.unit)
        return (anchor - seconds, anchor) if node.direction == ast.Direction.BEFORE else (anchor, anchor + seconds)
    code = canonical_code(node.amount.unit or "")
    if node.direction == ast.Direction.BEFORE:
        return shift_date(anchor, -node.amount.value, code), anchor
    return anchor, shift_date(anchor, node.amount.value, code)


def table_value(table: ast.Table, key: Value) -> Fraction:
    """A table's value for a key (an enumeration value, or a number in one of its bands), canonical:
    the checker makes the rows cover every key."""
    for row in table.rows:
        if not row.band and row.key == key:
            return literal_value(row.value)
        if row.band and (row.high is None or key < literal_value(row.high)):  # type: ignore[operator]
            return literal_value(row.value)  # bands run upwards from `below X`: the first that fits
    raise AssertionError(f"table `{table.name}` has no row for {key!r}")


def criterion_outcome(evaluator: Evaluator, criterion: ast.Criterion) -> tuple[Truth, Truth, Truth]:
    """(applies, condition, passes) for one criterion, each True/False/None (unknown)."""
    applies = True if criterion.guard is None else evaluator.condition(criterion.guard)
    condition = evaluator.condition(criterion.body)
    holds = condition if criterion.kind == ast.CriterionKind.INCLUSION else negate(condition)
    return applies, condition, kleene_or([negate(applies), holds])


def verdict_of(passes: Iterable[Truth]) -> Verdict:
    outcome = kleene_and(passes)
    return Verdict.ELIGIBLE if outcome is True else Verdict.INELIGIBLE if outcome is False else Verdict.UNDETERMINED


def evaluate(checked: CheckedProtocol, facts: Mapping[str, Value]) -> tuple[Verdict, dict[str, Truth]]:
    """Reference verdict by Kleene evaluation alone: exact for complete patients."""
    evaluator = Evaluator(checked, facts)
    passes = {cid: criterion_outcome(evaluator, c)[2] for cid, c in checked.criteria.items()}
    return verdict_of(passes.values()), passes
