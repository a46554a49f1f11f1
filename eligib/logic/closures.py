"""The closures a KleeneProgram (kleene.py) is assembled from, one per kind of node, each computing
what the reference evaluator (evaluate.py) computes for that node."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from functools import partial
from typing import Any, assert_never

from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.logic.evaluate import COMPARATORS, Truth, literal_value
from eligib.values.calendar import DAY_SECONDS, shift_date
from eligib.values.types import NONE, DateTimeType, DateType, Value
from eligib.values.types.timestamp import step_seconds
from eligib.values.units import canonical_code

Facts = Mapping[str, Value]
Item = Mapping[str, Any] | None  # the history item a query's `where` reads, by field
Closure = Callable[[Facts, Item], Any]
Outcome = tuple[Truth, Truth]  # a criterion's (applies, passes)
KNOWN = object()  # `gap`: every value is there


def gap(values: list[Any]) -> Any:
    """What an operation on these values gives when one is missing: none when one is none (first), unknown
    (None) when one is unknown, else KNOWN: the operation can be applied."""
    if any(value is NONE for value in values):
        return NONE
    return None if any(value is None for value in values) else KNOWN


def cross_multiplied(test: Callable[[int, int], bool]) -> Callable[[Any, Any], bool]:
    """An order test on exact numbers (Fraction or int) by cross-multiplication, as Fraction itself
    compares (denominators are positive) but without its type dispatch: the numbers' own types are
    settled by the checker."""
    def compare(left: Any, right: Any) -> bool:
        return test(left.numerator * right.denominator, right.numerator * left.denominator)

    return compare


CROSS_MULTIPLIED = {comparator: cross_multiplied(test) for comparator, test in COMPARATORS.items()}

def unguarded_inclusion(body: Closure) -> Callable[[Facts], Outcome]:
    def outcome(facts: Facts) -> Outcome:
        return True, body(facts, None)

    return outcome


def unguarded_exclusion(body: Closure) -> Callable[[Facts], Outcome]:
    def outcome(facts: Facts) -> Outcome:
        fires = body(facts, None)
        return True, None if fires is None else not fires

    return outcome


def against_constant(comparator: Any, constant: Any, numeric: bool) -> Callable[[Any], bool]:
    """`value OP constant` as a test of the value alone; for numbers by cross-multiplication with the
    constant's numerator and denominator read once (the commonest test of a check)."""
    test = COMPARATORS[comparator]
    if not numeric:
        return lambda value: test(value, constant)
    numerator, denominator = constant.numerator, constant.denominator
    return lambda value: test(value.numerator * denominator, numerator * value.denominator)


def compare_pair(left_of: Closure, right_of: Closure, test: Callable[[Any, Any], bool]) -> Closure:
    """`left OP right`: false when either side is none, unknown when either is unknown."""
    def compare(facts: Facts, item: Item) -> Truth:
        left, right = left_of(facts, item), right_of(facts, item)
        if left is NONE or right is NONE:
            return False
        if left is None or right is None:
            return None
        return test(left, right)

    return compare


def compare_scaled(left_of: Closure, test: Callable[[Any, Any], bool], factor: Any, right_of: Closure) -> Closure:
    """`left OP factor * right`, the factor a written number (`alt <= 3 * alt_uln`): cross-multiplied
    without making the product, a Fraction whose normalisation (a gcd) costs more than the test.
    A none or unknown operand gives what the product and the comparison would give."""
    numerator, denominator = factor.numerator, factor.denominator
    return compare_pair(left_of, right_of, lambda left, right: test(
        left.numerator * denominator * right.denominator, numerator * right.numerator * left.denominator))


def fact_to_constant(name: str, test: Callable[[Any], bool]) -> Closure:
    """`fact OP constant`, the commonest condition of all, reading the fact itself."""
    def compare(facts: Facts, item: Item) -> Truth:
        left = facts.get(name)
        if left is NONE:
            return False
        return None if left is None else test(left)

    return compare


def compare_to_constant(left_of: Closure, test: Callable[[Any], bool]) -> Closure:
    """The most common comparison, a value against a written constant, with one call fewer."""
    def compare(facts: Facts, item: Item) -> Truth:
        left = left_of(facts, item)
        if left is NONE:
            return False
        return None if left is None else test(left)

    return compare


def constant(node: ast.BoolLiteral | ast.QuantityLiteral | ast.DateLiteral) -> Closure:
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


def negation(operand: Closure) -> Closure:
    def negated(facts: Facts, item: Item) -> Truth:
        value = operand(facts, item)
        return None if value is None else not value

    return negated


def minus(operand: Closure) -> Closure:
    def negative(facts: Facts, item: Item) -> Any:
        value = operand(facts, item)
        return value if value is None or value is NONE else -value

    return negative


def all_of(operands: list[Closure]) -> Closure:
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


def any_of(operands: list[Closure]) -> Closure:
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


def at_least(operands: list[Closure], count: int) -> Closure:
    def at_least(facts: Facts, item: Item) -> Truth:
        values = [operand(facts, item) for operand in operands]
        true, unknown = values.count(True), values.count(None)
        if true >= count:
            return True
        return False if true + unknown < count else None

    return at_least


def conditional(condition: Closure, then: Closure, otherwise: Closure) -> Closure:
    def conditional(facts: Facts, item: Item) -> Any:
        chosen = condition(facts, item)
        if chosen is True:
            return then(facts, item)
        if chosen is False:
            return otherwise(facts, item)
        first, second = then(facts, item), otherwise(facts, item)
        return first if first is not None and first == second else None

    return conditional


def is_none(subject_of: Closure, negated: bool) -> Closure:
    def is_none(facts: Facts, item: Item) -> Truth:
        subject = subject_of(facts, item)
        return None if subject is None else (subject is NONE) != negated

    return is_none


Step = Callable[[Any, Any], Any]


def arithmetic_steps(checked: CheckedProtocol, node: ast.Arithmetic) -> list[Step]:
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
            steps.append(partial(instant_shift, shift))
        elif result_is_date and isinstance(operand_type, DateType):
            steps.append(lambda result, value: Fraction((result - value) * DAY_SECONDS))
            result_is_date = False
        elif result_is_date:
            assert isinstance(operand_node, ast.QuantityLiteral)
            amount = operand_node.value if op == ast.Operator.ADD else -operand_node.value
            code = canonical_code(operand_node.unit or "")
            steps.append(partial(date_shift, amount, code))
        elif op == ast.Operator.DIVIDE:
            steps.append(divide)
        else:
            steps.append(op.apply)
    return steps


def instant_shift(shift: int, result: Any, value: Any) -> Any:
    return result + shift


def date_shift(amount: Fraction, code: str, result: Any, value: Any) -> Any:
    return shift_date(result, amount, code)


def divide(result: Any, value: Any) -> Any:
    return NONE if value == 0 else ast.Operator.DIVIDE.apply(result, value)
