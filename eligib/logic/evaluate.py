"""A plain-Python evaluator of the checked AST in three-valued (Kleene) logic.

It is exact wherever it gives a definite answer, so it decides every criterion whose facts
are known; where it says unknown, the solver decides. It is also the test oracle that the
Z3 compilation is checked against.
"""

from __future__ import annotations

import operator
from fractions import Fraction
from typing import Any, assert_never

from eligib.language import ast
from eligib.language.checker import CheckedProtocol, DateType
from eligib.values.units import canonical_code, parse_unit
from eligib.values.calendar import DAY_SECONDS, NONE, shift_date

COMPARATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
               "==": operator.eq, "!=": operator.ne}
Unknown = None


def literal_value(literal: ast.QuantityLiteral) -> Fraction:
    return literal.value if literal.unit is None else literal.value * parse_unit(literal.unit).factor


def kleene_and(values) -> bool | None:
    result: bool | None = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def kleene_or(values) -> bool | None:
    result: bool | None = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


class Evaluator:
    """Evaluates nodes for one patient, remembering every node's value for the explanation."""

    def __init__(self, checked: CheckedProtocol, facts: dict[str, Any]) -> None:
        self.checked = checked
        self.facts = facts
        self.values: dict[int, Any] = {}

    def eval(self, node: ast.Expr) -> Any:
        key = id(node)
        if key not in self.values:
            self.values[key] = self._eval(node)
        return self.values[key]

    def _eval(self, node: ast.Expr) -> Any:
        match node:
            case ast.BoolLiteral():
                return node.value
            case ast.QuantityLiteral():
                return literal_value(node)
            case ast.DateLiteral():
                return node.value.toordinal()
            case ast.NameRef():
                if node.name in self.checked.definitions:
                    return self.eval(self.checked.definitions[node.name].body)
                return self.facts.get(node.name)
            case ast.Call():
                values = [self.eval(arg) for arg in node.args]
                if any(v is NONE for v in values):
                    return NONE
                if any(v is None for v in values):
                    return None
                return min(values) if node.function == "min" else max(values)
            case ast.Not():
                inner = self.truth(self.eval(node.operand))  # a none condition is false, so `not` of it is true
                return None if inner is None else not inner
            case ast.And():
                return kleene_and(self.truth(self.eval(op)) for op in node.operands)
            case ast.Or():
                return kleene_or(self.truth(self.eval(op)) for op in node.operands)
            case ast.Compare():
                return kleene_and(self.link(node, i) for i in range(len(node.operators)))
            case ast.Arithmetic():
                return self.arithmetic(node)
            case ast.Negate():
                inner = self.eval(node.operand)
                return inner if inner is None or inner is NONE else -inner
            case ast.Conditional():
                condition = self.truth(self.eval(node.condition))
                if condition is True:
                    return self.eval(node.then)
                if condition is False:
                    return self.eval(node.otherwise)
                then, otherwise = self.eval(node.then), self.eval(node.otherwise)
                return then if then is not None and then == otherwise else None
            case ast.Implies():
                antecedent = self.truth(self.eval(node.antecedent))
                return kleene_or([None if antecedent is None else not antecedent,
                                  self.truth(self.eval(node.consequent))])
            case ast.IsValue():
                return self.membership(node.subject, (node.value,), node.negated)
            case ast.InSet():
                return self.membership(node.subject, node.values, node.negated)
            case ast.IsNone():
                subject = self.eval(node.subject)
                if subject is None:
                    return None
                return (subject is NONE) != node.negated
            case ast.Within():
                return self.within(node)
            case ast.Block():
                return self.block(node)
            case _:
                assert_never(node)

    @staticmethod
    def truth(value: Any) -> bool | None:
        """A condition's truth: an optional boolean that is none counts as false."""
        return False if value is NONE else value

    def link(self, node: ast.Compare, index: int) -> bool | None:
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
        for op, operand_node, value in zip(node.operators, node.operands[1:], values[1:]):
            operand_is_date = isinstance(self.checked.type_of(operand_node), DateType)
            if result_is_date and operand_is_date:  # date - date: a duration in canonical seconds
                result, result_is_date = Fraction((result - value) * DAY_SECONDS), False
            elif result_is_date:
                assert isinstance(operand_node, ast.QuantityLiteral)
                amount = operand_node.value if op == "+" else -operand_node.value
                result = shift_date(result, amount, canonical_code(operand_node.unit or ""))
            elif op == "+":
                result = result + value
            elif op == "-":
                result = result - value
            elif op == "*":
                result = result * value
            else:
                result = Fraction(result) / value
        return result

    def membership(self, subject_node: ast.Expr, values: tuple[str, ...], negated: bool) -> bool | None:
        subject = self.eval(subject_node)
        if subject is None:
            return None
        found = subject is not NONE and subject in values
        return found != negated

    def within(self, node: ast.Within) -> bool | None:
        date, anchor = self.eval(node.subject), self.eval(node.anchor)
        if date is NONE or anchor is NONE:
            return False
        if date is None or anchor is None:
            return None
        low, high = window(anchor, node)
        return low <= date <= high

    def block(self, node: ast.Block) -> bool | None:
        items = [self.truth(self.eval(item.body)) for item in node.items]
        if node.kind == "all":
            return kleene_and(items)
        if node.kind == "any":
            return kleene_or(items)
        true, unknown = items.count(True), items.count(None)
        if true >= node.count:
            return True
        if true + unknown < node.count:
            return False
        return None


def window(anchor: int, node: ast.Within) -> tuple[int, int]:
    """The inclusive day-number window of `within AMOUNT before|after ANCHOR`."""
    code = canonical_code(node.amount.unit or "")
    if node.direction == "before":
        return shift_date(anchor, -node.amount.value, code), anchor
    return anchor, shift_date(anchor, node.amount.value, code)


def criterion_outcome(evaluator: Evaluator, criterion: ast.Criterion) -> tuple[bool | None, bool | None, bool | None]:
    """(applies, condition, passes) for one criterion, each True/False/None (unknown)."""
    applies = True if criterion.guard is None else evaluator.truth(evaluator.eval(criterion.guard))
    condition = evaluator.truth(evaluator.eval(criterion.body))
    if criterion.kind == "inclusion":
        passes = kleene_or([None if applies is None else not applies, condition])
    else:
        passes = kleene_or([None if applies is None else not applies,
                            None if condition is None else not condition])
    return applies, condition, passes


def evaluate(checked: CheckedProtocol, facts: dict[str, Any]) -> tuple[str, dict[str, bool | None]]:
    """Reference verdict by Kleene evaluation alone: exact for complete patients (the test oracle)."""
    evaluator = Evaluator(checked, facts)
    passes = {cid: criterion_outcome(evaluator, c)[2] for cid, c in checked.criteria.items()}
    outcome = kleene_and(passes.values())
    verdict = {True: "eligible", False: "ineligible", None: "undetermined"}[outcome]
    return verdict, passes
