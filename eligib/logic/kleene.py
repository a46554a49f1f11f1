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

from collections.abc import Callable
from fractions import Fraction
from typing import Any, assert_never

from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.logic.closures import (
    CROSS_MULTIPLIED,
    KNOWN,
    Closure,
    Facts,
    Item,
    Outcome,
    against_constant,
    all_of,
    any_of,
    arithmetic_steps,
    at_least,
    compare_pair,
    compare_scaled,
    compare_to_constant,
    conditional,
    constant,
    fact_to_constant,
    gap,
    is_none,
    minus,
    negation,
    unguarded_exclusion,
    unguarded_inclusion,
)
from eligib.logic.evaluate import COMPARATORS, Truth, aggregate, literal_value, table_value, window
from eligib.values.types import NONE, DateTimeType, DateType, EnumType, History, ListType, NumType, Value

_CACHE_KEY = "kleene"
_NO_FACTS: dict[str, Value] = {}


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

    def outcome(self, cid: str) -> Callable[[Facts], Outcome]:
        """One criterion's (applies, passes) over a patient's values."""
        return self._by_id[cid]

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
        if guard is None:  # the common case, without the guard's branches
            return unguarded_inclusion(body) if inclusion else unguarded_exclusion(body)

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
                return constant(node)
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
                return negation(self.condition(node.operand))
            case ast.And():
                return all_of([self.condition(op) for op in node.operands])
            case ast.Or():
                return any_of([self.condition(op) for op in node.operands])
            case ast.Compare():
                return self._compare(node)
            case ast.Arithmetic():
                return self._arithmetic(node)
            case ast.Negate():
                return minus(self.expr(node.operand))
            case ast.Conditional():
                return conditional(self.condition(node.condition), self.expr(node.then), self.expr(node.otherwise))
            case ast.Implies():
                return any_of([negation(self.condition(node.antecedent)), self.condition(node.consequent)])
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
                return is_none(self.expr(node.subject), node.negated)
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
            missing = gap(values)
            return pick(values) if missing is KNOWN else missing

        return extremum

    def _compare(self, node: ast.Compare) -> Closure:
        operands = [self.expr(op) for op in node.operands]
        numeric = all(isinstance(self.checked.type_of(op), NumType | DateType | DateTimeType) for op in node.operands)
        tests = [CROSS_MULTIPLIED[op] if numeric else COMPARATORS[op] for op in node.operators]
        scaled = self._scaled(node.operands[1]) if len(tests) == 1 and numeric else None
        if scaled is not None:
            return compare_scaled(operands[0], COMPARATORS[node.operators[0]], *scaled)
        if len(tests) == 1 and isinstance(node.operands[1], ast.QuantityLiteral | ast.DateLiteral):
            against = against_constant(node.operators[0], operands[1](_NO_FACTS, None), numeric)
            left = node.operands[0]
            if isinstance(left, ast.NameRef) and left.nid not in self.checked.field_refs \
                    and left.name in self.checked.facts:
                return fact_to_constant(left.name, against)
            return compare_to_constant(operands[0], against)
        if len(tests) == 1:
            return compare_pair(operands[0], operands[1], tests[0])

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

    def _scaled(self, node: ast.Expr) -> tuple[Any, Closure] | None:
        """(factor, closure of the other operand) for `number * value` or `value * number`, else None."""
        if not (isinstance(node, ast.Arithmetic) and node.operators == (ast.Operator.MULTIPLY,)):
            return None
        first, second = node.operands
        for written, other in ((first, second), (second, first)):
            if isinstance(written, ast.QuantityLiteral) and isinstance(self.checked.type_of(other), NumType):
                return literal_value(written), self.expr(other)
        return None

    def _arithmetic(self, node: ast.Arithmetic) -> Closure:
        operands = [self.expr(op) for op in node.operands]
        steps = arithmetic_steps(self.checked, node)

        def arithmetic(facts: Facts, item: Item) -> Any:
            values = [operand(facts, item) for operand in operands]
            missing = gap(values)
            if missing is not KNOWN:
                return missing
            result = values[0]
            for step, value in zip(steps, values[1:], strict=True):
                result = step(result, value)
                if result is NONE:
                    return NONE
            return result

        return arithmetic

    def _membership(self, subject_node: ast.Expr, values: tuple[str, ...], negated: bool) -> Closure:
        subject_of, members = self.expr(subject_node), frozenset(values)
        if isinstance(subject_node, ast.NameRef) and subject_node.nid not in self.checked.field_refs \
                and subject_node.name in self.checked.facts:
            name = subject_node.name

            def fact_membership(facts: Facts, item: Item) -> Truth:  # the fact read here: one call fewer
                subject = facts.get(name)
                if subject is None:
                    return None
                return (subject is not NONE and subject in members) != negated

            return fact_membership

        def membership(facts: Facts, item: Item) -> Truth:
            subject = subject_of(facts, item)
            if subject is None:
                return None
            return (subject is not NONE and subject in members) != negated

        return membership

    def _within(self, node: ast.Within) -> Closure:
        date_of, anchor_of = self.expr(node.subject), self.expr(node.anchor)
        instants = isinstance(self.checked.type_of(node.anchor), DateTimeType)

        def within(date: Any, anchor: Any) -> bool:
            low, high = window(anchor, node, instants)
            return bool(low <= date <= high)

        return compare_pair(date_of, anchor_of, within)

    def _block(self, node: ast.Block) -> Closure:
        items = [self.condition(item.body) for item in node.items]
        match node.kind:
            case ast.BlockKind.ALL:
                return all_of(items)
            case ast.BlockKind.ANY:
                return any_of(items)
            case ast.BlockKind.AT_LEAST:
                return at_least(items, node.count)
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
