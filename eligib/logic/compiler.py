"""Compile a checked protocol to Z3, once; the result is reused for every patient.

Exact throughout: numbers are rationals in canonical units (RealVal from strings, never
floats), dates are day numbers, enumerations are indices. Every criterion, and every
node of it (so every named path), has its own Z3 term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, assert_never

import z3

from eligib.language import ast
from eligib.language.checker import BoolType, CheckedProtocol, DateType, EnumType, FactInfo, NumType
from eligib.logic.evaluate import literal_value
from eligib.values.units import canonical_code, parse_unit
from eligib.limits import EARLIEST_DATE, LATEST_DATE
from eligib.values.calendar import DAY_SECONDS, NONE, month_shift_bounds, shift_date, shift_months, shift_pieces


RELATIONS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
             ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def relate(operator: str, left: Any, right: Any) -> Any:
    """`left op right`, kept in integer arithmetic when an Int term meets a constant.

    Z3 decides mixed integer/real constraints such as 28 < x < 29 (x an integer) poorly, often
    not at all; `x > 28.5` is `x > 28` for an integer x, and the solver answers at once."""
    for term, constant, op in ((left, right, operator), (right, left, FLIPPED[operator])):
        if z3.is_int(term) and z3.is_real(constant):
            value = z3.simplify(constant)
            if z3.is_rational_value(value):
                return _integer_bound(op, term, value.as_fraction())
    return RELATIONS[operator](left, right)


FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _integer_bound(operator: str, term: Any, bound: Fraction) -> Any:
    floor, ceiling = math.floor(bound), math.ceil(bound)
    if operator == "<":
        return term < ceiling if bound.denominator != 1 else term < floor
    if operator == "<=":
        return term <= floor
    if operator == ">":
        return term > floor if bound.denominator != 1 else term > ceiling
    if operator == ">=":
        return term >= ceiling
    whole = bound.denominator == 1
    if operator == "==":
        return term == floor if whole else z3.BoolVal(False, term.ctx)
    return term != floor if whole else z3.BoolVal(True, term.ctx)


def rational(value: Fraction | int, ctx: z3.Context) -> z3.ArithRef:
    value = Fraction(value)
    return z3.RealVal(f"{value.numerator}/{value.denominator}", ctx)


def conjunction(terms: list, ctx: z3.Context) -> Any:
    """`z3.And` of a list that may be empty, in the given context (never Z3's shared main context)."""
    return z3.And(*terms, ctx)


@dataclass
class FactVars:
    """A fact's Z3 variables, and a second copy used to ask whether its value can matter."""

    info: FactInfo
    value: Any
    present: Any  # a Bool for `or none` facts, else None
    copy_value: Any
    copy_present: Any
    factor: Fraction = Fraction(1)  # canonical value of 1 declared unit

    def canonical(self, var: Any) -> Any:
        """A numeric variable in canonical units; an integer stays an Int term when its factor is whole."""
        if z3.is_int(var) and self.factor.denominator == 1:
            return var if self.factor == 1 else var * z3.IntVal(self.factor.numerator, var.ctx)
        real = z3.ToReal(var) if z3.is_int(var) else var
        return real if self.factor == 1 else real * rational(self.factor, var.ctx)


@dataclass
class Shift:
    """`fact ± N months`: a variable pinned exactly when the fact is known, else bounded soundly."""

    fact: str
    months: int
    var: Any
    copy_var: Any


@dataclass
class CompiledProtocol:
    """One protocol in its own Z3 context: a thread uses its own compilation (Z3 contexts are not
    thread-safe), and nothing here touches Z3's shared main context."""

    checked: CheckedProtocol
    ctx: Any
    solver: Any
    facts: dict[str, FactVars]
    shifts: dict[tuple[str, int], Shift]
    passes: dict[str, Any]
    criterion_facts: dict[str, frozenset[str]]
    terms: dict[int, Any] = field(repr=False)
    presence: dict[int, Any] = field(repr=False)
    assumed: Any = None  # the conjunction of the protocol's assumptions, or None
    # each assumption with the facts it relates
    assumptions: list[tuple[frozenset[str], Any]] = field(default_factory=list)
    _equalities: dict[tuple[str, Any], list] = field(default_factory=dict, repr=False)
    _copies: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def term(self, node: ast.Expr) -> Any:
        return self.terms[id(node)]

    def condition(self, node: ast.Expr) -> Any:
        """A condition's term; an optional boolean that is none counts as false."""
        presence = self.presence.get(id(node))
        term = self.terms[id(node)]
        return term if presence is None else z3.And(presence, term)

    def eligible(self) -> Any:
        return conjunction(list(self.passes.values()), self.ctx)

    def with_copy(self, formula: Any, fact: str, cache_key: str | None = None) -> Any:
        """The formula with one fact (and its month shifts) replaced by its second copy.

        `cache_key` names a formula that lives as long as the compilation (a criterion id)."""
        if cache_key is not None and (cache_key, fact) in self._copies:
            return self._copies[(cache_key, fact)]
        variables = self.facts[fact]
        pairs = [(variables.value, variables.copy_value)]
        if variables.present is not None:
            pairs.append((variables.present, variables.copy_present))
        pairs += [(s.var, s.copy_var) for s in self.shifts.values() if s.fact == fact]
        copied = z3.substitute(formula, *pairs)
        if cache_key is not None:
            self._copies[(cache_key, fact)] = copied
        return copied

    def calendar_lemmas(self, model: Any, names: Any = None) -> list:
        """True calendar facts that rule out this model's inexact month shifts; [] when it has none.

        An unknown anchor's month shift is bounded soundly (the calendar hull), so a model may put
        it on a day the calendar does not give. Each lemma states the exact shift over the anchor's
        whole month, so a query refined this way converges in a few rounds; `names` limits the check
        to the shifts of those facts (the ones a query is about)."""
        lemmas: list = []
        for shift in self.shifts.values():
            if names is not None and shift.fact not in names:
                continue
            fact = self.facts[shift.fact]
            for value, present, var in ((fact.value, fact.present, shift.var),
                                        (fact.copy_value, fact.copy_present, shift.copy_var)):
                if present is not None and not z3.is_true(model.eval(present, model_completion=True)):
                    continue
                anchor = model.eval(value, model_completion=True).as_long()
                if model.eval(var, model_completion=True).as_long() == shift_months(anchor, shift.months):
                    continue
                for low, high, slope, intercept in shift_pieces(anchor, shift.months):
                    exact = var == (value + intercept if slope else z3.IntVal(intercept, self.ctx))
                    lemmas.append(z3.Implies(z3.And(value >= low, value <= high), exact))
        return lemmas

    def fact_assumptions(self, name: str, value: Any) -> list:
        """Z3 literals fixing one known fact (cached: building terms is most of a check's cost)."""
        key = (name, value)
        cached = self._equalities.get(key)
        if cached is None:
            cached = self._build_assumptions(name, value)
            self._equalities[key] = cached
        return cached

    def _build_assumptions(self, name: str, value: Any) -> list:
        fact = self.facts[name]
        if value is NONE:
            return [z3.Not(fact.present)]
        literals = [fact.present] if fact.present is not None else []
        kind = fact.info.type
        if isinstance(kind, BoolType):
            literals.append(fact.value == z3.BoolVal(bool(value), self.ctx))
        elif isinstance(kind, EnumType):
            literals.append(fact.value == kind.values.index(value))
        elif isinstance(kind, DateType):
            literals.append(fact.value == int(value))
            for shift in self.shifts.values():
                if shift.fact == name:
                    literals.append(shift.var == shift_date(int(value), Fraction(shift.months), "mo"))
        else:
            declared = Fraction(value) / fact.factor
            literals.append(fact.value == (z3.IntVal(int(declared), self.ctx) if kind.integer
                                           else rational(declared, self.ctx)))
        return literals


def compile_protocol(checked: CheckedProtocol, ctx: z3.Context | None = None) -> CompiledProtocol:
    """Compile into `ctx`, or into a new Z3 context of its own (never the shared main context)."""
    return _Compiler(checked, ctx if ctx is not None else z3.Context()).run()


class _Compiler:
    def __init__(self, checked: CheckedProtocol, ctx: z3.Context) -> None:
        self.checked = checked
        self.ctx = ctx
        self.solver = z3.Solver(ctx=ctx)
        self.facts: dict[str, FactVars] = {}
        self.shifts: dict[tuple[str, int], Shift] = {}
        self.terms: dict[int, Any] = {}
        self.presence: dict[int, Any] = {}

    def run(self) -> CompiledProtocol:
        for name, info in self.checked.facts.items():
            self.facts[name] = self.declare(info)
        passes, criterion_facts = {}, {}
        for cid, criterion in self.checked.criteria.items():
            body = self.boolean(criterion.body)
            if criterion.guard is None:
                applies = z3.BoolVal(True, self.ctx)
            else:
                applies = self.boolean(criterion.guard)
            passes[cid] = z3.Or(z3.Not(applies), body) if criterion.kind == "inclusion" \
                else z3.Not(z3.And(applies, body))
            criterion_facts[cid] = self.checked.facts_of(criterion.body) | (
                self.checked.facts_of(criterion.guard) if criterion.guard is not None else frozenset())
        for assertion in self.checked.assertions.values():
            self.boolean(assertion.body)
        # Assumptions are not added to the shared solver: a query takes those linked to its facts,
        # so small checks stay small; whole-protocol analyses add `assumed` themselves.
        assumptions = [(self.checked.facts_of(a.body), self.boolean(a.body))
                       for a in self.checked.assumptions.values()]
        return CompiledProtocol(self.checked, self.ctx, self.solver, self.facts, self.shifts, passes, criterion_facts,
                                self.terms, self.presence,
                                conjunction([term for _, term in assumptions], self.ctx) if assumptions else None,
                                assumptions)

    # ------------------------------------------------------------- facts
    def declare(self, info: FactInfo) -> FactVars:
        kind = info.type
        factor = Fraction(1)
        if isinstance(kind, BoolType):
            make = z3.Bool
        elif isinstance(kind, (DateType, EnumType)):
            make = z3.Int
        else:
            make = z3.Int if kind.integer else z3.Real
            factor = parse_unit(kind.unit).factor if kind.unit else Fraction(1)
        value, copy = make(info.name, self.ctx), make(f"{info.name}'", self.ctx)
        present = z3.Bool(f"{info.name}?", self.ctx) if info.optional else None
        copy_present = z3.Bool(f"{info.name}'?", self.ctx) if info.optional else None
        fact = FactVars(info, value, present, copy, copy_present, factor)
        for var, flag in ((value, present), (copy, copy_present)):
            for constraint in self.domain(fact, var):
                self.solver.add(constraint if flag is None else z3.Implies(flag, constraint))
        return fact

    def domain(self, fact: FactVars, var: Any) -> list:
        info, kind = fact.info, fact.info.type
        if isinstance(kind, EnumType):
            return [var >= 0, var < len(kind.values)]
        constraints = []
        if isinstance(kind, DateType):
            low = info.low if info.low is not None else EARLIEST_DATE
            high = info.high if info.high is not None else LATEST_DATE
            constraints += [var >= low, var <= high]
        elif isinstance(kind, NumType):
            canonical = fact.canonical(var)
            constraints += [relate(">=", canonical, rational(info.low, self.ctx))] if info.low is not None else []
            constraints += [relate("<=", canonical, rational(info.high, self.ctx))] if info.high is not None else []
        return constraints

    def shift(self, fact_name: str, months: int) -> Any:
        key = (fact_name, months)
        if key not in self.shifts:
            fact = self.facts[fact_name]
            var, copy = z3.Int(f"{fact_name}{months:+d}mo", self.ctx), z3.Int(f"{fact_name}'{months:+d}mo", self.ctx)
            low, high = month_shift_bounds(months)
            for shifted, base, flag in ((var, fact.value, fact.present), (copy, fact.copy_value, fact.copy_present)):
                offset = shifted - base if months > 0 else base - shifted
                bound = z3.And(offset >= low, offset <= high)
                self.solver.add(bound if flag is None else z3.Implies(flag, bound))
            self.shifts[key] = Shift(fact_name, months, var, copy)
        return self.shifts[key].var

    # --------------------------------------------------------- expressions
    def boolean(self, node: ast.Expr) -> Any:
        """A condition's Z3 term: an optional boolean fact that is none counts as false."""
        term = self.compile(node)
        presence = self.presence.get(id(node))
        return term if presence is None else z3.And(presence, term)

    def value(self, node: ast.Expr) -> tuple[Any, Any]:
        """A value's term and the condition that it exists (no `none` inside)."""
        term = self.compile(node)
        return term, self.presence.get(id(node), z3.BoolVal(True, self.ctx))

    def compile(self, node: ast.Expr) -> Any:
        key = id(node)
        if key not in self.terms:
            self.terms[key] = self._compile(node)
        return self.terms[key]

    def _set_presence(self, node: ast.Expr, parts: list) -> None:
        parts = [p for p in parts if not z3.is_true(p)]
        if parts:
            self.presence[id(node)] = parts[0] if len(parts) == 1 else z3.And(parts)

    def _compile(self, node: ast.Expr) -> Any:
        match node:
            case ast.BoolLiteral():
                return z3.BoolVal(node.value, self.ctx)
            case ast.QuantityLiteral():
                return rational(literal_value(node), self.ctx)
            case ast.DateLiteral():
                return z3.IntVal(node.value.toordinal(), self.ctx)
            case ast.NameRef():
                return self.name(node)
            case ast.Call():
                return self.extremum(node)
            case ast.Not():
                return z3.Not(self.boolean(node.operand))
            case ast.And():
                return z3.And([self.boolean(op) for op in node.operands])
            case ast.Or():
                return z3.Or([self.boolean(op) for op in node.operands])
            case ast.Compare():
                return z3.And([self.link(node, i) for i in range(len(node.operators))])
            case ast.Arithmetic():
                return self.arithmetic(node)
            case ast.Negate():
                term, present = self.value(node.operand)
                self._set_presence(node, [present])
                return -term
            case ast.Conditional():
                return self.conditional(node)
            case ast.Implies():
                return z3.Implies(self.boolean(node.antecedent), self.boolean(node.consequent))
            case ast.IsValue():
                return self.membership(node, node.subject, (node.value,), node.negated)
            case ast.InSet():
                return self.membership(node, node.subject, node.values, node.negated)
            case ast.IsNone():
                _, present = self.value(node.subject)
                return present if node.negated else z3.Not(present)
            case ast.Within():
                return self.within(node)
            case ast.Block():
                return self.block(node)
            case _:
                assert_never(node)

    def name(self, node: ast.NameRef) -> Any:
        if node.name in self.checked.definitions:
            return self.boolean(self.checked.definitions[node.name].body)
        fact = self.facts[node.name]
        if fact.present is not None:
            self.presence[id(node)] = fact.present
        if isinstance(fact.info.type, NumType):
            return fact.canonical(fact.value)
        return fact.value

    def extremum(self, node: ast.Call) -> Any:
        values = [self.value(arg) for arg in node.args]
        self._set_presence(node, [present for _, present in values])
        result = values[0][0]
        for term, _ in values[1:]:
            smaller = term < result if node.function == "min" else term > result
            result = z3.If(smaller, term, result)
        return result

    def link(self, node: ast.Compare, index: int) -> Any:
        left, left_present = self.value(node.operands[index])
        right, right_present = self.value(node.operands[index + 1])
        return z3.And(left_present, right_present, relate(node.operators[index], left, right))

    def arithmetic(self, node: ast.Arithmetic) -> Any:
        result, present = self.value(node.operands[0])
        presences = [present]
        result_is_date = isinstance(self.checked.type_of(node.operands[0]), DateType)
        for step, (op, operand) in enumerate(zip(node.operators, node.operands[1:])):
            operand_is_date = isinstance(self.checked.type_of(operand), DateType)
            if result_is_date and operand_is_date:
                term, present = self.value(operand)
                presences.append(present)
                result, result_is_date = (result - term) * DAY_SECONDS, False  # whole seconds: an Int
            elif result_is_date:
                result = self.date_step(node.operands[0] if step == 0 else None, result, op, operand)
            else:
                term, present = self.value(operand)
                presences.append(present)
                result = {"+": lambda a, b: a + b, "-": lambda a, b: a - b,
                          "*": lambda a, b: a * b, "/": lambda a, b: a / b}[op](result, term)
        self._set_presence(node, presences)
        return result

    def date_step(self, base: ast.Expr | None, current: Any, op: str, amount: ast.QuantityLiteral) -> Any:
        code = canonical_code(amount.unit or "")
        sign = 1 if op == "+" else -1
        if code in ("d", "wk"):
            days = int(amount.value * (7 if code == "wk" else 1))
            return current + sign * days
        months = sign * int(amount.value) * (12 if code == "a" else 1)
        if isinstance(base, ast.DateLiteral):
            return z3.IntVal(shift_date(base.value.toordinal(), Fraction(months), "mo"), self.ctx)
        assert isinstance(base, ast.NameRef), "checker guarantees a date fact anchor"
        return self.shift(base.name, months)

    def conditional(self, node: ast.Conditional) -> Any:
        condition = self.boolean(node.condition)
        if isinstance(self.checked.type_of(node), BoolType):
            return z3.If(condition, self.boolean(node.then), self.boolean(node.otherwise))
        then, then_present = self.value(node.then)
        otherwise, otherwise_present = self.value(node.otherwise)
        self._set_presence(node, [z3.If(condition, then_present, otherwise_present)])
        return z3.If(condition, then, otherwise)

    def membership(self, node: ast.Expr, subject: ast.Expr, values: tuple[str, ...], negated: bool) -> Any:
        term, present = self.value(subject)
        kind = self.checked.type_of(subject)
        assert isinstance(kind, EnumType)
        found = z3.And(present, z3.Or([term == kind.values.index(v) for v in values]))
        return z3.Not(found) if negated else found

    def within(self, node: ast.Within) -> Any:
        date, date_present = self.value(node.subject)
        anchor, anchor_present = self.value(node.anchor)
        sign = "-" if node.direction == "before" else "+"
        shifted = self.date_step(node.anchor, anchor, sign, node.amount)
        low, high = (shifted, anchor) if node.direction == "before" else (anchor, shifted)
        return z3.And(date_present, anchor_present, low <= date, date <= high)

    def block(self, node: ast.Block) -> Any:
        items = [self.boolean(item.body) for item in node.items]
        if node.kind == "all":
            return z3.And(items)
        if node.kind == "any":
            return z3.Or(items)
        return z3.Sum([z3.If(item, 1, 0) for item in items]) >= node.count

