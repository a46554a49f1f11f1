"""The checked AST compiled once into Python closures: the fast three-valued (Kleene) evaluation the
engine decides with before anything else.

It computes exactly what the reference evaluator (evaluate.py) computes, node for node, but each
node's dispatch, type tests and constants are settled once per protocol instead of once per patient,
and nothing is remembered per node (the reference evaluator keeps every value for the explanation;
an explanation builds its own evaluator, lazily). Closures, not generated source: nothing from a
protocol is ever turned into code. A property test holds both evaluators equal on generated
protocols and patients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from functools import partial
from typing import Any, assert_never

from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.logic.evaluate import COMPARATORS, Truth, aggregate, literal_value, table_value, window
from eligib.values.calendar import DAY_SECONDS, shift_date
from eligib.values.types import NONE, DateTimeType, DateType, EnumType, History, ListType, NumType, Value
from eligib.values.types.timestamp import step_seconds
from eligib.values.units import canonical_code

Facts = Mapping[str, Value]
Item = Mapping[str, Any] | None  # the history item a query's `where` reads, by field
Closure = Callable[[Facts, Item], Any]
Outcome = tuple[Truth, Truth]  # a criterion's (applies, passes)
_CACHE_KEY = "kleene"
_NO_FACTS: dict[str, Value] = {}


def _cross_multiplied(test: Callable[[int, int], bool]) -> Callable[[Any, Any], bool]:
    """An order test on exact numbers (Fraction or int) by cross-multiplication, as Fraction itself
    compares (denominators are positive) but without its type dispatch: the numbers' own types are
    settled by the checker."""
    def compare(left: Any, right: Any) -> bool:
        return test(left.numerator * right.denominator, right.numerator * left.denominator)

    return compare


_CROSS_MULTIPLIED = {comparator: _cross_multiplied(test) for comparator, test in COMPARATORS.items()}
_TRUTH_VALUED = (ast.Not, ast.And, ast.Or, ast.Compare, ast.Implies, ast.IsValue, ast.InSet, ast.IsRanked,
                 ast.InValueSet, ast.IsNone, ast.Within, ast.Block)  # their closures return True, False or None


class KleeneProgram:
    """A protocol's criteria and assumptions as closures over a patient's canonical values."""

    def __init__(self, checked: CheckedProtocol) -> None:
        self.checked = checked
        self._definitions: dict[str, Closure] = {}
        self._conditions: dict[int, Closure] = {}  # bounded: one per node of the protocol asked for
        self.criteria: list[tuple[str, Callable[[Facts], Outcome]]] = [
            (cid, self._criterion(criterion)) for cid, criterion in checked.criteria.items()]
        self._by_id = dict(self.criteria)
        self.assumptions: list[tuple[ast.Assumption, Closure]] = [
            (assumption, self.condition(assumption.body)) for assumption in checked.assumptions.values()]

    @staticmethod
    def of(checked: CheckedProtocol) -> KleeneProgram:
        """The protocol's program, compiled on first use and kept with the checked protocol."""
        program = checked.derived.get(_CACHE_KEY)
        if program is None:
            program = checked.derived[_CACHE_KEY] = KleeneProgram(checked)
        assert isinstance(program, KleeneProgram)
        return program

    def outcomes(self, facts: Facts) -> dict[str, Outcome]:
        """Every criterion's (applies, passes), True/False/None (unknown), in protocol order."""
        return {cid: outcome(facts) for cid, outcome in self.criteria}

    def passes(self, cid: str) -> Callable[[Facts], Truth]:
        """Does the criterion let this patient through (True/False/None)?"""
        outcome = self._by_id[cid]
        return lambda facts: outcome(facts)[1]

    def all_pass(self, cids: list[str]) -> Callable[[Facts], Truth]:
        """Do all these criteria let the patient through (Kleene conjunction)?"""
        outcomes = [self._by_id[cid] for cid in cids]

        def conjunction(facts: Facts) -> Truth:
            result: Truth = True
            for outcome in outcomes:
                passes = outcome(facts)[1]
                if passes is False:
                    return False
                if passes is None:
                    result = None
            return result

        return conjunction

    def condition_of(self, node: ast.Expr) -> Closure:
        """Any condition of the protocol (a named path's body) as a closure, compiled on first use."""
        closure = self._conditions.get(node.nid)
        if closure is None:
            closure = self._conditions[node.nid] = self.condition(node)
        return closure

    def _criterion(self, criterion: ast.Criterion) -> Callable[[Facts], Outcome]:
        guard = None if criterion.guard is None else self.condition(criterion.guard)
        body = self.condition(criterion.body)
        inclusion = criterion.kind == ast.CriterionKind.INCLUSION

        def outcome(facts: Facts) -> Outcome:
            applies = True if guard is None else guard(facts, None)
            if applies is False:
                return False, True
            holds = body(facts, None)
            if holds is not None and not inclusion:
                holds = not holds
            if holds is True:
                return applies, True
            return applies, None if applies is None or holds is None else False

        return outcome

    def condition(self, node: ast.Expr) -> Closure:
        """A condition's truth: an optional boolean that is none counts as false."""
        value = self.expr(node)
        if isinstance(node, _TRUTH_VALUED) or self._plain_fact(node):
            return value  # never none: no wrapper to call

        def truth(facts: Facts, item: Item) -> Truth:
            result = value(facts, item)
            return False if result is NONE else result

        return truth

    def _plain_fact(self, node: ast.Expr) -> bool:
        """A fact that cannot be none (a declared `or none` can)."""
        return isinstance(node, ast.NameRef) and node.nid not in self.checked.field_refs \
            and node.name in self.checked.facts and not self.checked.facts[node.name].optional

    def expr(self, node: ast.Expr) -> Closure:  # one case per node kind, as in evaluate.py
        match node:
            case ast.BoolLiteral() | ast.QuantityLiteral() | ast.DateLiteral():
                return _constant(node)
            case ast.NameRef() if node.nid in self.checked.field_refs:
                name = node.name
                return lambda facts, item: item[name]  # type: ignore[index]
            case ast.NameRef() if node.name in self.checked.definitions:
                return self._definition(node.name)
            case ast.NameRef():
                name = node.name
                return lambda facts, item: facts.get(name)
            case ast.Call():
                return self._call(node)
            case ast.Not():
                return _not(self.condition(node.operand))
            case ast.And():
                return _all([self.condition(op) for op in node.operands])
            case ast.Or():
                return _any([self.condition(op) for op in node.operands])
            case ast.Compare():
                return self._compare(node)
            case ast.Arithmetic():
                return self._arithmetic(node)
            case ast.Negate():
                return _negate(self.expr(node.operand))
            case ast.Conditional():
                return _conditional(self.condition(node.condition), self.expr(node.then), self.expr(node.otherwise))
            case ast.Implies():
                return _any([_not(self.condition(node.antecedent)), self.condition(node.consequent)])
            case ast.IsValue():
                return self._membership(node.subject, (node.value,), node.negated)
            case ast.InSet():
                return self._membership(node.subject, node.values, node.negated)
            case ast.IsRanked():
                enum = self.checked.types[node.subject.nid]
                assert isinstance(enum, EnumType)
                return self._membership(node.subject, node.among(enum.values), False)
            case ast.InValueSet():
                members = self.checked.value_sets[node.value_set].members
                return self._membership(node.subject, members, node.negated)
            case ast.IsNone():
                return _is_none(self.expr(node.subject), node.negated)
            case ast.Within():
                return self._within(node)
            case ast.Block():
                return self._block(node)
            case ast.Query():
                return self._query(node)
            case _:
                assert_never(node)

    def _definition(self, name: str) -> Closure:
        compiled = self._definitions.get(name)
        if compiled is None:
            compiled = self._definitions[name] = self.expr(self.checked.definitions[name].body)
        return compiled

    def _call(self, node: ast.Call) -> Closure:
        args = [self.expr(arg) for arg in node.args]
        table = self.checked.tables.get(node.function)
        if table is not None:
            key_of = args[0]

            def lookup(facts: Facts, item: Item) -> Any:
                key = key_of(facts, item)
                return key if key is None or key is NONE else table_value(table, key)

            return lookup
        pick = min if node.function == "min" else max

        def extremum(facts: Facts, item: Item) -> Any:
            values = [arg(facts, item) for arg in args]
            if any(v is NONE for v in values):
                return NONE
            if any(v is None for v in values):
                return None
            return pick(values)

        return extremum

    def _compare(self, node: ast.Compare) -> Closure:
        operands = [self.expr(op) for op in node.operands]
        numeric = all(isinstance(self.checked.type_of(op), NumType | DateType | DateTimeType) for op in node.operands)
        tests = [_CROSS_MULTIPLIED[op] if numeric else COMPARATORS[op] for op in node.operators]
        if len(tests) == 1 and isinstance(node.operands[1], ast.QuantityLiteral | ast.DateLiteral):
            return _compare_to_constant(operands[0], tests[0], operands[1](_NO_FACTS, None))
        if len(tests) == 1:
            left_of, right_of, test = operands[0], operands[1], tests[0]

            def compare_two(facts: Facts, item: Item) -> Truth:
                left, right = left_of(facts, item), right_of(facts, item)
                if left is NONE or right is NONE:
                    return False
                if left is None or right is None:
                    return None
                return test(left, right)

            return compare_two

        def compare_chain(facts: Facts, item: Item) -> Truth:
            result: Truth = True
            left = operands[0](facts, item)
            for test, right_of in zip(tests, operands[1:], strict=True):
                right = right_of(facts, item)
                if left is NONE or right is NONE:
                    return False
                if left is None or right is None:
                    result = None
                elif not test(left, right):
                    return False
                left = right
            return result

        return compare_chain

    def _arithmetic(self, node: ast.Arithmetic) -> Closure:
        operands = [self.expr(op) for op in node.operands]
        steps = _arithmetic_steps(self.checked, node)

        def arithmetic(facts: Facts, item: Item) -> Any:
            values = [operand(facts, item) for operand in operands]
            if any(v is NONE for v in values):
                return NONE
            if any(v is None for v in values):
                return None
            result = values[0]
            for step, value in zip(steps, values[1:], strict=True):
                result = step(result, value)
                if result is NONE:
                    return NONE
            return result

        return arithmetic

    def _membership(self, subject_node: ast.Expr, values: tuple[str, ...], negated: bool) -> Closure:
        subject_of, members = self.expr(subject_node), frozenset(values)

        def membership(facts: Facts, item: Item) -> Truth:
            subject = subject_of(facts, item)
            if subject is None:
                return None
            return (subject is not NONE and subject in members) != negated

        return membership

    def _within(self, node: ast.Within) -> Closure:
        date_of, anchor_of = self.expr(node.subject), self.expr(node.anchor)
        instants = isinstance(self.checked.type_of(node.anchor), DateTimeType)

        def within(facts: Facts, item: Item) -> Truth:
            date, anchor = date_of(facts, item), anchor_of(facts, item)
            if date is NONE or anchor is NONE:
                return False
            if date is None or anchor is None:
                return None
            low, high = window(anchor, node, instants)
            return bool(low <= date <= high)

        return within

    def _block(self, node: ast.Block) -> Closure:
        items = [self.condition(item.body) for item in node.items]
        match node.kind:
            case ast.BlockKind.ALL:
                return _all(items)
            case ast.BlockKind.ANY:
                return _any(items)
            case ast.BlockKind.AT_LEAST:
                return _at_least(items, node.count)
            case _:
                assert_never(node.kind)

    def _query(self, node: ast.Query) -> Closure:
        list_type = self.checked.facts[node.collection].type
        assert isinstance(list_type, ListType)
        names = tuple(f.name for f in list_type.fields)
        where = None if node.where is None else self.condition(node.where)
        collection, kind, field = node.collection, node.kind, node.field or ""

        def query(facts: Facts, item: Item) -> Any:
            history = facts.get(collection)
            if history is None:
                return None
            assert isinstance(history, History)
            if where is None:
                truths: list[Truth] = [True] * len(history.items)
            else:
                outer = item or {}
                truths = [where(facts, {**outer, **dict(zip(names, entry, strict=True))}) for entry in history.items]
            open_ended = not history.complete or None in truths
            match kind:
                case ast.QueryKind.ANY | ast.QueryKind.NO:
                    found: Truth = True if True in truths else None if open_ended else False
                    return found if kind == ast.QueryKind.ANY else (None if found is None else not found)
                case ast.QueryKind.EVERY:
                    return False if False in truths else None if open_ended else True
                case ast.QueryKind.COUNT:
                    return None if open_ended else Fraction(truths.count(True))
                case _:
                    if open_ended:
                        return None
                    chosen = [entry for entry, truth in zip(history.items, truths, strict=True) if truth]
                    return aggregate(kind, list_type, chosen, field)

        return query


def _compare_to_constant(left_of: Closure, test: Callable[[Any, Any], bool], constant: Any) -> Closure:
    """The most common comparison, a value against a written constant, with one call fewer."""
    def compare(facts: Facts, item: Item) -> Truth:
        left = left_of(facts, item)
        if left is NONE:
            return False
        return None if left is None else test(left, constant)

    return compare


def _constant(node: ast.BoolLiteral | ast.QuantityLiteral | ast.DateLiteral) -> Closure:
    match node:
        case ast.BoolLiteral():
            value: Any = node.value
        case ast.QuantityLiteral():
            value = literal_value(node)
        case ast.DateLiteral():
            value = node.value.toordinal()
        case _:
            assert_never(node)
    return lambda facts, item: value


def _not(operand: Closure) -> Closure:
    def negated(facts: Facts, item: Item) -> Truth:
        value = operand(facts, item)
        return None if value is None else not value

    return negated


def _negate(operand: Closure) -> Closure:
    def negative(facts: Facts, item: Item) -> Any:
        value = operand(facts, item)
        return value if value is None or value is NONE else -value

    return negative


def _all(operands: list[Closure]) -> Closure:
    def conjunction(facts: Facts, item: Item) -> Truth:
        result: Truth = True
        for operand in operands:
            value = operand(facts, item)
            if value is False:
                return False
            if value is None:
                result = None
        return result

    return conjunction


def _any(operands: list[Closure]) -> Closure:
    def disjunction(facts: Facts, item: Item) -> Truth:
        result: Truth = False
        for operand in operands:
            value = operand(facts, item)
            if value is True:
                return True
            if value is None:
                result = None
        return result

    return disjunction


def _at_least(operands: list[Closure], count: int) -> Closure:
    def at_least(facts: Facts, item: Item) -> Truth:
        values = [operand(facts, item) for operand in operands]
        true, unknown = values.count(True), values.count(None)
        if true >= count:
            return True
        return False if true + unknown < count else None

    return at_least


def _conditional(condition: Closure, then: Closure, otherwise: Closure) -> Closure:
    def conditional(facts: Facts, item: Item) -> Any:
        chosen = condition(facts, item)
        if chosen is True:
            return then(facts, item)
        if chosen is False:
            return otherwise(facts, item)
        first, second = then(facts, item), otherwise(facts, item)
        return first if first is not None and first == second else None

    return conditional


def _is_none(subject_of: Closure, negated: bool) -> Closure:
    def is_none(facts: Facts, item: Item) -> Truth:
        subject = subject_of(facts, item)
        return None if subject is None else (subject is NONE) != negated

    return is_none


Step = Callable[[Any, Any], Any]


def _arithmetic_steps(checked: CheckedProtocol, node: ast.Arithmetic) -> list[Step]:
    """One function per operator, chosen once from the operand types as evaluate.py chooses per patient:
    instants and dates step by written durations, date - date is a duration, a quotient by zero is none."""
    steps: list[Step] = []
    first = checked.type_of(node.operands[0])
    result_is_date, result_is_instant = isinstance(first, DateType), isinstance(first, DateTimeType)
    for op, operand_node in zip(node.operators, node.operands[1:], strict=True):
        operand_type = checked.type_of(operand_node)
        if result_is_instant and isinstance(operand_type, DateTimeType):
            steps.append(lambda result, value: Fraction(result - value))
            result_is_instant = False
        elif result_is_instant:
            assert isinstance(operand_node, ast.QuantityLiteral)
            seconds = step_seconds(operand_node.value, operand_node.unit)
            shift = seconds if op == ast.Operator.ADD else -seconds
            steps.append(partial(_instant_shift, shift))
        elif result_is_date and isinstance(operand_type, DateType):
            steps.append(lambda result, value: Fraction((result - value) * DAY_SECONDS))
            result_is_date = False
        elif result_is_date:
            assert isinstance(operand_node, ast.QuantityLiteral)
            amount = operand_node.value if op == ast.Operator.ADD else -operand_node.value
            code = canonical_code(operand_node.unit or "")
            steps.append(partial(_date_shift, amount, code))
        elif op == ast.Operator.DIVIDE:
            steps.append(_divide)
        else:
            steps.append(op.apply)
    return steps


def _instant_shift(shift: int, result: Any, value: Any) -> Any:
    return result + shift


def _date_shift(amount: Fraction, code: str, result: Any, value: Any) -> Any:
    return shift_date(result, amount, code)


def _divide(result: Any, value: Any) -> Any:
    return NONE if value == 0 else ast.Operator.DIVIDE.apply(result, value)
