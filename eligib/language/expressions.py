"""Expression typing: every expression gets a value type (or an error), units are checked, date and
calendar arithmetic is validated. The types are recorded by node id for the later stages."""

from __future__ import annotations

from fractions import Fraction
from typing import assert_never

from eligib.language import ast
from eligib.language.check_state import CheckState
from eligib.language.declarations import UNIT_HELP
from eligib.language.diagnostics import Diagnostic, error, suggest
from eligib.language.queries import HistoryTyper, mismatch
from eligib.language.source import Span
from eligib.language.time_typing import TimeTyper, date_and_datetime
from eligib.values.types import (
    BOOL,
    DATE,
    BoolType,
    DateTimeType,
    DateType,
    EnumType,
    ListType,
    NumType,
    ValueType,
)
from eligib.values.units import DIMENSIONLESS, PLAIN, UnitError, parse_unit, to_canonical

FUNCTIONS = ("min", "max")
NONE_QUERIES = (ast.QueryKind.MIN, ast.QueryKind.MAX, ast.QueryKind.LATEST, ast.QueryKind.EARLIEST)
Type = ValueType


class ExpressionTyper:
    """Types expressions against the declarations in a CheckState, reporting what is wrong."""

    def __init__(self, state: CheckState) -> None:
        self.state = state
        self.definition_types: dict[str, Type] = {}
        self.in_progress: list[str] = []
        self.scope: tuple[ListType, ...] = ()  # the histories whose items a `where` reads, innermost last
        self.histories = HistoryTyper(self)
        self.times = TimeTyper(self)

    def report(self, diagnostic: Diagnostic) -> None:
        self.state.report(diagnostic)

    def definition_type(self, name: str) -> Type:
        if name in self.definition_types:
            return self.definition_types[name]
        definition = self.state.definitions[name]
        if name in self.in_progress:
            cycle = " -> ".join([*self.in_progress[self.in_progress.index(name):], name])
            self.report(error("definition-cycle", f"definition `{name}` refers to itself ({cycle})", definition.span,
                              "defined in terms of itself"))
            return BOOL
        self.in_progress.append(name)
        scope, self.scope = self.scope, ()  # a definition reads the patient, never an item
        # a definition names a condition or a value (`define bmi: weight / (height * height)`)
        result = self.infer(definition.body) or BOOL
        self.scope = scope
        self.in_progress.pop()
        self.definition_types[name] = result
        return result

    def expect_bool(self, expr: ast.Expr, what: str) -> Type:
        found = self.infer(expr)
        if found is not None and not isinstance(found, BoolType):
            self.report(error("type-mismatch", f"{what} must be a condition, but this is {found}", expr.span,
                              "not true/false", help="compare it, e.g. `x >= 10 U/L`"))
        return BOOL

    def infer(self, expr: ast.Expr) -> Type | None:
        """Type of an expression, or None after reporting an error inside it."""
        result = self._infer(expr)
        if result is not None:
            self.state.types[expr.nid] = result
        return result

    def _infer(self, expr: ast.Expr) -> Type | None:
        match expr:
            case ast.BoolLiteral():
                return BOOL
            case ast.QuantityLiteral():
                return self.literal_type(expr)
            case ast.DateLiteral():
                return DATE
            case ast.NameRef():
                return self.name_type(expr)
            case ast.Call():
                return self.call_type(expr)
            case ast.Not():
                return self.expect_bool(expr.operand, "the operand of `not`")
            case ast.And() | ast.Or():
                word = "and" if isinstance(expr, ast.And) else "or"
                for operand in expr.operands:
                    self.expect_bool(operand, f"each side of `{word}`")
                return BOOL
            case ast.Compare():
                return self.compare_type(expr)
            case ast.Arithmetic():
                return self.arithmetic_type(expr)
            case ast.Negate():
                inner = self.infer(expr.operand)
                if inner is not None and not isinstance(inner, NumType):
                    self.report(error("type-mismatch", f"cannot negate {inner}", expr.span, "not a number"))
                    return None
                return inner
            case ast.Conditional():
                return self.conditional_type(expr)
            case ast.Implies():
                self.expect_bool(expr.antecedent, "the left side of `implies`")
                self.expect_bool(expr.consequent, "the right side of `implies`")
                return BOOL
            case ast.IsValue():
                self.enum_values(expr.subject, (expr.value,), expr.span)
                return BOOL
            case ast.InSet():
                self.enum_values(expr.subject, expr.values, expr.span)
                return BOOL
            case ast.IsRanked():
                self.ranked_value(expr)
                return BOOL
            case ast.IsNone():
                self.optional_subject(expr)
                return BOOL
            case ast.Within():
                self.times.within_types(expr)
                return BOOL
            case ast.Block():
                self.block_types(expr)
                return BOOL
            case ast.InValueSet():
                self.histories.value_set_members(expr)
                return BOOL
            case ast.Query():
                return self.histories.query_type(expr)
            case _:
                assert_never(expr)

    def conditional_type(self, expr: ast.Conditional) -> Type | None:
        self.expect_bool(expr.condition, "the condition after `if`")
        then, otherwise = self.infer(expr.then), self.infer(expr.otherwise)
        if then is None or otherwise is None:
            return None
        if not then.same_kind(otherwise):
            self.report(error("type-mismatch", f"the two branches differ: {then} vs {otherwise}", expr.otherwise.span,
                              "other branch has another type",
                              help="both branches of `if ... else` must have the same type and unit"))
            return None
        return then

    def call_type(self, call: ast.Call) -> Type | None:
        if call.function in self.state.tables:
            return self.histories.lookup_type(call, self.state.tables[call.function])
        if call.function not in FUNCTIONS:
            self.report(error("unknown-function", f"unknown function `{call.function}`", call.span, "not a function",
                              help=suggest(call.function, FUNCTIONS) or f"functions are {', '.join(FUNCTIONS)}"))
            return None
        types = [self.infer(arg) for arg in call.args]
        known = [t for t in types if t is not None]
        if len(known) != len(types):
            return None
        if len(known) < 2:
            self.report(error("bad-arguments", f"`{call.function}` needs at least two values", call.span, "one value"))
            return None
        first = known[0]
        if not isinstance(first, (NumType, DateType, DateTimeType)):
            self.report(error("type-mismatch", f"`{call.function}` takes numbers or dates, but this is {first}",
                              call.args[0].span, "not a number or date"))
            return None
        for arg, found in zip(call.args[1:], known[1:], strict=True):
            if not first.same_kind(found):
                self.report(mismatch(first, found, arg, "<="))
                return None
        if isinstance(first, NumType):
            return NumType(first.kind, first.unit, all(isinstance(t, NumType) and t.integer for t in known))
        return first

    def literal_type(self, literal: ast.QuantityLiteral) -> Type | None:
        if literal.unit is None:
            return NumType(PLAIN, None, integer=literal.value.denominator == 1)
        try:
            return NumType(parse_unit(literal.unit).kind, literal.unit)
        except UnitError as exc:
            self.report(error("unknown-unit", f"unknown unit `{literal.unit}`", literal.span, "not a unit",
                              help=f"{exc}; {UNIT_HELP}"))
            return None

    def name_type(self, ref: ast.NameRef) -> Type | None:
        state = self.state
        owner = self.field_owner(ref.name)
        if owner is not None:
            state.field_refs[ref.nid] = ref.name  # an item's field hides a fact of the same name
            return owner.field(ref.name).type
        if ref.name in state.facts:
            state.used_facts.add(ref.name)
            return state.facts[ref.name].type
        if ref.name in state.definitions:
            state.used_definitions.add(ref.name)
            return self.definition_type(ref.name)
        enum_owner = next((f.name for f in state.facts.values()
                           if isinstance(f.type, EnumType) and ref.name in f.type.values), None)
        if enum_owner:
            self.report(error("unknown-fact", f"`{ref.name}` is a value of `{enum_owner}`, not a fact", ref.span,
                              "used as a condition", help=f"write `{enum_owner} is {ref.name}`"))
            return None
        fields = [f.name for history in self.scope for f in history.fields]
        hint = suggest(ref.name, [*fields, *state.facts, *state.definitions])
        self.report(error("unknown-fact", f"unknown fact `{ref.name}`", ref.span, "not declared in this protocol",
                          help=hint or "declare it under `facts:` or define it with `define`"))
        return None

    def field_owner(self, name: str) -> ListType | None:
        """The innermost history in scope with a field of this name (an inner item hides an outer one)."""
        return next((h for h in reversed(self.scope) if any(f.name == name for f in h.fields)), None)

    def compare_type(self, expr: ast.Compare) -> Type:
        if (misused := self.enum_value_compared(expr)) is not None:
            self.report(misused)
            return BOOL
        types = [self.infer(operand) for operand in expr.operands]
        for index, operator in enumerate(expr.operators):
            left, right = types[index], types[index + 1]
            if left is None or right is None:
                continue
            if isinstance(left, (EnumType, BoolType)) or isinstance(right, (EnumType, BoolType)):
                if isinstance(left, BoolType) and isinstance(right, BoolType) and operator in ("==", "!="):
                    continue
                enum = left if isinstance(left, EnumType) else right
                hint = (f"compare a value of `{enum.fact}` with `is` or `in (...)`"
                        + (", or its place with `is at least` or `is at most`" if enum.ordered else "")
                        if isinstance(enum, EnumType) else "combine conditions with `and`, `or`, `not`")
                self.report(error("type-mismatch", f"cannot compare {left} with {right} using `{operator}`",
                                  expr.span, "not comparable", help=hint))
            elif {type(left), type(right)} == {DateType, DateTimeType}:
                self.report(date_and_datetime(expr.span, "a date and a date-time"))
            elif not left.same_kind(right):
                self.report(mismatch(left, right, expr.operands[index + 1], operator))
        return BOOL

    def enum_value_compared(self, expr: ast.Compare) -> Diagnostic | None:
        """`nyha_class >= iii`: a value of an enumeration used as a comparison's operand."""
        state = self.state
        for index, operator in enumerate(expr.operators):
            pair = expr.operands[index], expr.operands[index + 1]
            for subject, value in (pair, pair[::-1]):
                if not isinstance(value, ast.NameRef) or value.name in state.facts or \
                        value.name in state.definitions or self.field_owner(value.name) is not None:
                    continue
                subject_type = self.infer(subject)
                if isinstance(subject_type, EnumType) and value.name in subject_type.values:
                    return error("type-mismatch", f"`{value.name}` is a value of `{subject_type.fact}`, not a number",
                                 expr.span, "compared with `" + operator + "`",
                                 help=_enum_hint(subject_type, operator, f"{state.text(subject)} ", value.name))
        return None

    def arithmetic_type(self, expr: ast.Arithmetic) -> Type | None:
        types = [self.infer(operand) for operand in expr.operands]
        known = [t for t in types if t is not None]
        if len(known) != len(types):
            return None
        result: Type | None = known[0]
        for index, operator in enumerate(expr.operators):
            if result is None:
                return None
            result = self.binary_type(result, operator, known[index + 1], expr, index)
        return result

    def binary_type(self, left: Type, operator: ast.Operator, right: Type, whole: ast.Arithmetic,
                    step: int) -> Type | None:
        right_node = whole.operands[step + 1]
        if isinstance(left, DateTimeType) or isinstance(right, DateTimeType):
            return self.times.instant_arithmetic(left, operator, right, whole, step)
        if isinstance(left, DateType) or isinstance(right, DateType):
            return self.times.date_arithmetic(left, operator, right, whole, step)
        if not isinstance(left, NumType) or not isinstance(right, NumType):
            bad = left if not isinstance(left, NumType) else right
            self.report(error("type-mismatch", f"arithmetic needs numbers, but this is {bad}", whole.span,
                              "not a number"))
            return None
        if operator in (ast.Operator.ADD, ast.Operator.SUBTRACT):
            if not left.same_kind(right):
                self.report(mismatch(left, right, right_node, operator))
                return None
            return NumType(left.kind, left.unit, left.integer and right.integer)
        dividing = operator == ast.Operator.DIVIDE
        if dividing and is_constant(right_node) and constant_value(right_node, self.state.types) == 0:
            self.report(error("division-by-zero", f"division by zero: `{self.state.text(right_node)}` is 0",
                              right_node.span, "divides by zero", help="divide by a number that is not zero"))
            return None
        if left.unit is None and not dividing:
            return NumType(right.kind, right.unit, left.integer and right.integer)
        if right.unit is None:
            return NumType(left.kind, left.unit, left.integer and right.integer and not dividing)
        return calculated_type(left, right, dividing)

    def enum_values(self, subject: ast.Expr, values: tuple[str, ...], span: Span | None) -> None:
        subject_type = self.infer(subject)
        if subject_type is None:
            return
        if not isinstance(subject_type, EnumType):
            self.report(error("type-mismatch", f"`is` and `in` test enumerations, but this is {subject_type}",
                              subject.span, "not an enumeration",
                              help="compare numbers and dates with <, <=, ==; use a boolean fact directly"))
            return
        for value in values:
            if value not in subject_type.values:
                self.report(error("unknown-enum-value", f"`{value}` is not a value of `{subject_type.fact}`", span,
                                  f"`{subject_type.fact}` is {subject_type}",
                                  help=suggest(value, subject_type.values)
                                  or f"declared values: {', '.join(subject_type.values)}"))

    def ranked_value(self, expr: ast.IsRanked) -> None:
        """`x is at least V`: x is an ordered enumeration and V one of its values."""
        self.enum_values(expr.subject, (expr.value,), expr.span)
        subject_type = self.infer(expr.subject)
        if isinstance(subject_type, EnumType) and not subject_type.ordered:
            self.report(unordered(subject_type, "is at least" if not expr.at_most else "is at most", expr.span))

    def optional_subject(self, expr: ast.IsNone) -> None:
        if self.infer(expr.subject) is None:
            return
        subject = expr.subject
        if isinstance(subject, ast.Query) and subject.kind in NONE_QUERIES:
            return  # no matching item: none
        if isinstance(subject, ast.NameRef) and subject.nid in self.state.field_refs:
            owner = self.field_owner(subject.name)
            assert owner is not None
            if not owner.field(subject.name).optional:
                self.report(error("not-optional", f"field `{subject.name}` is never none", subject.span,
                                  "not declared `or none`",
                                  help=f"add `or none` to the field `{subject.name}`"))
            return
        facts = self.state.facts
        if not isinstance(expr.subject, ast.NameRef) or expr.subject.name not in facts:
            self.report(error("type-mismatch", "`is none` applies to a fact", expr.subject.span, "not a fact"))
        elif not facts[expr.subject.name].optional:
            self.report(error("not-optional", f"fact `{expr.subject.name}` is never none", expr.subject.span,
                              "not declared `or none`",
                              help=f"add `or none` to the declaration of `{expr.subject.name}`"))

    def block_types(self, block: ast.Block) -> None:
        first: dict[str, ast.BlockItem] = {}
        for item in block.items:
            if item.name is not None:
                if item.name in first:
                    self.report(error("duplicate-path", f"alternative name `{item.name}` is used twice in this block",
                                      item.span, "used again here",
                                      help=f"the first `{item.name}` is at {first[item.name].span}; give each "
                                           "alternative of a block its own name"))
                first.setdefault(item.name, item)
            self.expect_bool(item.body, f"alternative `{item.name}`" if item.name else "each item of the block")
        if block.kind == ast.BlockKind.AT_LEAST and not 1 <= block.count <= len(block.items):
            self.report(error("bad-count", f"`at least {block.count} of` needs between 1 and {len(block.items)}",
                              block.span, f"{len(block.items)} items here"))


def is_constant(node: ast.Expr) -> bool:
    match node:
        case ast.QuantityLiteral():
            return True
        case ast.Negate():
            return is_constant(node.operand)
        case ast.Arithmetic():
            return all(is_constant(operand) for operand in node.operands)
        case _:
            return False


def constant_value(node: ast.Expr, types: dict[int, ValueType]) -> Fraction | None:
    """The exact value of a constant expression, in canonical units; None if it divides by zero."""
    match node:
        case ast.QuantityLiteral():
            if types.get(node.nid) is None:
                return None
            return to_canonical(node.value, node.unit)
        case ast.Negate():
            inner = constant_value(node.operand, types)
            return None if inner is None else -inner
        case ast.Arithmetic():
            values = [constant_value(operand, types) for operand in node.operands]
            result = values[0]
            for operator, value in zip(node.operators, values[1:], strict=True):
                if result is None or value is None or (operator == ast.Operator.DIVIDE and value == 0):
                    return None
                result = operator.apply(result, value)
            return result
        case _:
            return None


RANK_WORDS = {"<": "is below", "<=": "is at most", ">": "is above", ">=": "is at least"}


def _enum_hint(enum: EnumType, operator: str, subject: str = "", value: str = "VALUE") -> str:
    """How to write a comparison of enumeration values: `is`, or a rank test on an ordered one."""
    if operator in ("<=", ">="):
        test = f"`{subject}{RANK_WORDS[operator]} {value}`"
        if enum.ordered:
            return f"write {test}"
        return (f"`{enum.fact}` has no order: declare it lowest first, `one of ({' < '.join(enum.values)})`, "
                f"then write {test}")
    if operator in ("<", ">"):
        return (f"write `{subject}is at {'most' if operator == '<' else 'least'}` the value "
                f"{'before' if operator == '<' else 'after'} {value}"
                + ("" if enum.ordered else f", after declaring `{enum.fact}` in order (`one of (a < b < c)`)"))
    return f"write `{subject}is {value}`" if operator == "==" else f"write `{subject}is not {value}`"


def unordered(enum: EnumType, test: str, span: Span | None) -> Diagnostic:
    return error("unordered-enum", f"`{test}` needs an order, but `{enum.fact}` is an unordered enumeration", span,
                 "no order declared", help=f"if its values are ranked, declare them lowest first: "
                                           f"`one of ({' < '.join(enum.values)})`")


def calculated_type(left: NumType, right: NumType, dividing: bool) -> NumType:
    """The type of a product or quotient of quantities, by dimension analysis: `weight / (height *
    height)` is a mass per area, `alt / alt_uln` and `weight / 1 kg` are plain numbers (the ratio, the
    number of kilograms), `5 mg/kg * weight` is a mass. A calculation cancels its units: only written
    units keep their cancellations apart (`mmol/mol` is not `mg/g`); `%` and dividing annotations stay."""
    left_unit = parse_unit(left.unit) if left.unit else parse_unit("1")
    right_unit = parse_unit(right.unit) if right.unit else parse_unit("1")
    combined = left_unit * (right_unit ** -1 if dividing else right_unit)
    kind = (combined.dims, DIMENSIONLESS, combined.kind[2])
    if kind == PLAIN:
        return NumType(PLAIN, None)
    text = f"({left.unit}){'/' if dividing else '.'}({right.unit})"
    return NumType(kind, text, left.integer and right.integer and not dividing)

