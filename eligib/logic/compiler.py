"""Compile a checked protocol to Z3, once; the result is reused for every patient.

Exact throughout: numbers are rationals in canonical units (RealVal from strings, never floats),
dates are day numbers, enumerations are indices; each value type encodes itself (values/types.py).
Every criterion, and every node of it (so every named path), has its own Z3 term, by node id.
A compilation lives in its own Z3 context: a thread uses its own (Z3 contexts are not thread-safe),
and nothing here touches Z3's shared main context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, assert_never

import z3

from eligib.language import ast
from eligib.language.checked import CheckedProtocol, FactInfo
from eligib.logic.evaluate import literal_value
from eligib.logic.histories import HistoryCompiler, HistoryVars, SlotVars, history_literals
from eligib.values.calendar import DAY_SECONDS, month_shift_bounds, shift_date, shift_months, shift_pieces
from eligib.values.types import NONE, BoolType, DateTimeType, DateType, EnumType, History, ListType, Value
from eligib.values.types.timestamp import step_seconds
from eligib.values.units import canonical_code
from eligib.values.z3terms import conjunction, rational, relate

SOLVER_PATIENTS = 500  # patients analysed on one solver before a fresh one replaces it
EQUALITIES_KEPT = 4096  # known-fact literals cached per compilation (one per fact value seen)

Term = Any  # a Z3 expression (z3 has no type stubs)


@dataclass(frozen=True)
class FactVars:
    """A fact's Z3 variables, and a second copy used to ask whether its value can matter."""

    info: FactInfo
    value: Term
    present: Term  # a Bool for `or none` facts, else None
    copy_value: Term
    copy_present: Term


@dataclass(frozen=True)
class Shift:
    """`fact ± N months`: a variable pinned exactly when the fact is known, else bounded soundly."""

    fact: str
    months: int
    var: Term
    copy_var: Term


@dataclass
class CompiledProtocol:
    """A protocol's Z3 terms in one context (see the module docstring)."""

    checked: CheckedProtocol
    ctx: Any
    solver: Any
    facts: dict[str, FactVars]
    shifts: dict[tuple[str, int], Shift]
    passes: dict[str, Term]
    terms: dict[int, Term] = field(repr=False)  # node id -> term
    presence: dict[int, Term] = field(repr=False)  # node id -> the condition that its value is not none
    assumed: Term = None  # the conjunction of the protocol's assumptions, or None
    assumptions: list[tuple[frozenset[str], Term]] = field(default_factory=list)  # each with the facts it relates
    histories: dict[str, HistoryVars] = field(default_factory=dict)
    _equalities: dict[tuple[str, Value], list[Term]] = field(default_factory=dict, repr=False)  # bounded
    _base: list[Term] = field(default_factory=list, repr=False)  # the solver's own assertions (domains)
    _patients: int = field(default=0, repr=False)  # patients analysed on the current solver
    var_names: dict[int, tuple[Term, str, int]] = field(default_factory=dict, repr=False)  # models.py, by id
    _copies: dict[tuple[str, str], Term] = field(default_factory=dict, repr=False)
    _touching: dict[str, Term | None] = field(default_factory=dict, repr=False)  # bounded: one per fact

    @property
    def criterion_facts(self) -> Mapping[str, frozenset[str]]:
        return self.checked.criterion_facts

    def term(self, node: ast.Expr) -> Term:
        return self.terms[node.nid]

    def patient_solver(self) -> Any:
        """The solver for one more patient's queries. Every SOLVER_PATIENTS patients it is replaced by a
        fresh one holding only the fact domains: what a solver learns and keeps from thousands of checks
        (and the calendar lemmas added for them) slows every later query, and a patient never needs it."""
        self._patients += 1
        if self._patients > SOLVER_PATIENTS:
            self.solver = z3.Solver(ctx=self.ctx)
            self.solver.add(*self._base)
            self._patients = 1
        return self.solver

    def assumptions_on(self, fact: str) -> Term | None:
        """The conjunction of the assumptions that read `fact` (None: none does): the only ones a copy
        of the patient differing in `fact` alone can break."""
        if fact not in self._touching:
            touching = [term for group, term in self.assumptions if fact in group]
            self._touching[fact] = conjunction(touching, self.ctx) if touching else None
        return self._touching[fact]

    def condition(self, node: ast.Expr) -> Term:
        """A condition's term; an optional boolean that is none counts as false."""
        presence = self.presence.get(node.nid)
        term = self.terms[node.nid]
        return term if presence is None else z3.And(presence, term)

    def eligible(self) -> Term:
        return conjunction(list(self.passes.values()), self.ctx)

    def with_copy(self, formula: Term, fact: str, cache_key: str | None = None) -> Term:
        """The formula with one fact (and its month shifts) replaced by its second copy.

        `cache_key` names a formula that lives as long as the compilation (a criterion id)."""
        if cache_key is not None and (cache_key, fact) in self._copies:
            return self._copies[(cache_key, fact)]
        if fact in self.histories:
            pairs = [pair for slot in self.histories[fact].slots for pair in slot.pairs()]
        else:
            variables = self.facts[fact]
            pairs = [(variables.value, variables.copy_value)]
            if variables.present is not None:
                pairs.append((variables.present, variables.copy_present))
            pairs += [(s.var, s.copy_var) for s in self.shifts.values() if s.fact == fact]
        copied = z3.substitute(formula, *pairs)
        if cache_key is not None:
            self._copies[(cache_key, fact)] = copied
        return copied

    def calendar_lemmas(self, model: Any, names: Any = None, copies: bool = True) -> list[Term]:
        """True calendar facts that rule out this model's inexact month shifts; [] when it has none.

        An unknown anchor's month shift is bounded soundly (the calendar hull), so a model may put it
        on a day the calendar does not give. Each lemma states the exact shift over the anchor's whole
        month, so a query refined this way converges in a few rounds; `names` limits the check to the
        shifts of those facts (the ones a query is about); `copies=False` to the facts, not their copies."""
        lemmas: list[Term] = []
        for shift in self.shifts.values():
            if names is not None and shift.fact not in names:
                continue
            fact = self.facts[shift.fact]
            pairs = [(fact.value, fact.present, shift.var)]
            if copies:
                pairs.append((fact.copy_value, fact.copy_present, shift.copy_var))
            for value, present, var in pairs:
                if present is not None and not z3.is_true(model.eval(present, model_completion=True)):
                    continue
                anchor = model.eval(value, model_completion=True).as_long()
                if model.eval(var, model_completion=True).as_long() == shift_months(anchor, shift.months):
                    continue
                for low, high, slope, intercept in shift_pieces(anchor, shift.months):
                    exact = var == (value + intercept if slope else z3.IntVal(intercept, self.ctx))
                    lemmas.append(z3.Implies(z3.And(value >= low, value <= high), exact))
        return lemmas

    def fact_assumptions(self, name: str, value: Value) -> list[Term]:
        """Z3 literals fixing one known fact (cached: building terms is most of a check's cost)."""
        key = (name, value)
        cached = self._equalities.get(key)
        if cached is None:
            if len(self._equalities) >= EQUALITIES_KEPT:  # one entry per value seen: drop the oldest
                del self._equalities[next(iter(self._equalities))]
            cached = self._equalities[key] = self._build_assumptions(name, value)
        return cached

    def _build_assumptions(self, name: str, value: Value) -> list[Term]:
        if name in self.histories:
            assert isinstance(value, History)
            return history_literals(self.histories[name], value)
        fact = self.facts[name]
        if value is NONE:
            return [z3.Not(fact.present)]
        literals = [fact.present] if fact.present is not None else []
        literals.append(fact.info.type.z3_equals(fact.value, value))
        for shift in self.shifts.values():
            if shift.fact == name and isinstance(value, int):  # a known anchor's month shifts are exact
                literals.append(shift.var == shift_date(value, Fraction(shift.months), "mo"))
        return literals


def compile_protocol(checked: CheckedProtocol, ctx: z3.Context | None = None,
                     slots: Mapping[str, int] | None = None) -> CompiledProtocol:
    """Compile into `ctx`, or into a new Z3 context of its own (never the shared main context).
    `slots` says how many items of each history to represent (slots.py; by default, its bound)."""
    return _Compiler(checked, ctx if ctx is not None else z3.Context(), slots or {}).run()


class _Compiler:
    def __init__(self, checked: CheckedProtocol, ctx: z3.Context, slots: Mapping[str, int]) -> None:
        self.checked = checked
        self.slot_counts = slots
        self.ctx = ctx
        self.solver = z3.Solver(ctx=ctx)
        self.facts: dict[str, FactVars] = {}
        self.shifts: dict[tuple[str, int], Shift] = {}
        self.terms: dict[int, Term] = {}
        self.presence: dict[int, Term] = {}
        self.histories: dict[str, HistoryVars] = {}
        self.slots: tuple[SlotVars, ...] = ()  # the items a query's `where` is being compiled for, innermost last
        self.history_terms = HistoryCompiler(self)

    def run(self) -> CompiledProtocol:
        for name, info in self.checked.facts.items():
            if isinstance(info.type, ListType):
                self.histories[name] = self.declare_history(info, info.type)
            else:
                self.facts[name] = self.declare(info)
        passes = {}
        for cid, criterion in self.checked.criteria.items():
            body = self.boolean(criterion.body)
            applies = z3.BoolVal(True, self.ctx) if criterion.guard is None else self.boolean(criterion.guard)
            passes[cid] = z3.Or(z3.Not(applies), body) if criterion.kind == ast.CriterionKind.INCLUSION \
                else z3.Not(z3.And(applies, body))
        for assertion in self.checked.assertions.values():
            self.boolean(assertion.body)
        # Assumptions are not added to the shared solver: a query takes those linked to its facts,
        # so small checks stay small; whole-protocol analyses add `assumed` themselves.
        assumptions = [(self.checked.facts_of(a.body), self.boolean(a.body)) for a in self.checked.assumptions.values()]
        assumed = conjunction([term for _, term in assumptions], self.ctx) if assumptions else None
        compiled = CompiledProtocol(self.checked, self.ctx, self.solver, self.facts, self.shifts, passes, self.terms,
                                    self.presence, assumed, assumptions, self.histories)
        compiled._base = list(self.solver.assertions())
        return compiled

    # ------------------------------------------------------------- facts
    def declare(self, info: FactInfo, name: str | None = None) -> FactVars:
        kind, name = info.type, name or info.name
        value, copy = kind.z3_variable(name, self.ctx), kind.z3_variable(f"{name}'", self.ctx)
        present = z3.Bool(f"{name}?", self.ctx) if info.optional else None
        copy_present = z3.Bool(f"{name}'?", self.ctx) if info.optional else None
        for var, flag in ((value, present), (copy, copy_present)):
            for constraint in kind.z3_domain(var, info):
                self.solver.add(constraint if flag is None else z3.Implies(flag, constraint))
        return FactVars(info, value, present, copy, copy_present)

    def declare_history(self, info: FactInfo, list_type: ListType) -> HistoryVars:
        slots = []
        for index in range(self.slot_counts.get(info.name, list_type.max_items)):
            prefix = f"{info.name}[{index + 1}]"
            fields = {}
            for spec in list_type.fields:
                assert isinstance(spec, FactInfo)
                fields[spec.name] = self.declare(spec, f"{prefix}.{spec.name}")
            slots.append(SlotVars(z3.Bool(f"{prefix}?", self.ctx), z3.Bool(f"{prefix}'?", self.ctx), fields))
        return HistoryVars(tuple(slots))

    def shift(self, fact_name: str, months: int) -> Term:
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
    def boolean(self, node: ast.Expr) -> Term:
        """A condition's Z3 term: an optional boolean fact that is none counts as false."""
        term = self.compile(node)
        presence = self.presence.get(node.nid)
        return term if presence is None else z3.And(presence, term)

    def value(self, node: ast.Expr) -> tuple[Term, Term]:
        """A value's term and the condition that it exists (no `none` inside)."""
        term = self.compile(node)
        return term, self.presence.get(node.nid, z3.BoolVal(True, self.ctx))

    def compile(self, node: ast.Expr) -> Term:
        if node.nid not in self.terms:
            self.terms[node.nid] = self._compile(node)
        return self.terms[node.nid]

    def _set_presence(self, node: ast.Expr, parts: list[Term]) -> None:
        parts = [p for p in parts if not z3.is_true(p)]
        if parts:
            self.presence[node.nid] = parts[0] if len(parts) == 1 else z3.And(parts)

    def _compile(self, node: ast.Expr) -> Term:
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
                return self.membership(node.subject, (node.value,), node.negated)
            case ast.InSet():
                return self.membership(node.subject, node.values, node.negated)
            case ast.IsRanked():
                enum = self.checked.types[node.subject.nid]
                assert isinstance(enum, EnumType)
                return self.membership(node.subject, node.among(enum.values), False)
            case ast.IsNone():
                _, present = self.value(node.subject)
                return present if node.negated else z3.Not(present)
            case ast.Within():
                return self.within(node)
            case ast.Block():
                return self.block(node)
            case ast.InValueSet():
                return self.membership(node.subject, self.checked.value_sets[node.value_set].members, node.negated)
            case ast.Query():
                return self.history_terms.query(node)
            case _:
                assert_never(node)

    def name(self, node: ast.NameRef) -> Term:
        if node.nid in self.checked.field_refs:
            field_vars = next(slot.fields[node.name] for slot in reversed(self.slots) if node.name in slot.fields)
            if field_vars.present is not None:
                self.presence[node.nid] = field_vars.present
            return field_vars.info.type.z3_term(field_vars.value)
        if node.name in self.checked.definitions:
            body = self.checked.definitions[node.name].body
            if isinstance(self.checked.type_of(body), BoolType):
                return self.boolean(body)
            term, present = self.value(body)  # a calculated value: it exists when its inputs do
            self._set_presence(node, [present])
            return term
        fact = self.facts[node.name]
        if fact.present is not None:
            self.presence[node.nid] = fact.present
        return fact.info.type.z3_term(fact.value)

    def extremum(self, node: ast.Call) -> Term:
        if node.function in self.checked.tables:
            return self.history_terms.lookup(node)
        values = [self.value(arg) for arg in node.args]
        self._set_presence(node, [present for _, present in values])
        result = values[0][0]
        for term, _ in values[1:]:
            smaller = term < result if node.function == "min" else term > result
            result = z3.If(smaller, term, result)
        return result

    def link(self, node: ast.Compare, index: int) -> Term:
        left, left_present = self.value(node.operands[index])
        right, right_present = self.value(node.operands[index + 1])
        return z3.And(left_present, right_present, relate(node.operators[index], left, right))

    def arithmetic(self, node: ast.Arithmetic) -> Term:
        result, present = self.value(node.operands[0])
        presences = [present]
        result_is_date = isinstance(self.checked.type_of(node.operands[0]), DateType)
        result_is_instant = isinstance(self.checked.type_of(node.operands[0]), DateTimeType)
        for step, (op, operand) in enumerate(zip(node.operators, node.operands[1:], strict=True)):
            operand_is_date = isinstance(self.checked.type_of(operand), DateType)
            if result_is_instant and isinstance(self.checked.type_of(operand), DateTimeType):
                term, present = self.value(operand)
                presences.append(present)
                result, result_is_instant = result - term, False  # seconds: an Int
            elif result_is_instant:
                assert isinstance(operand, ast.QuantityLiteral), "the checker allows only written durations"
                seconds = step_seconds(operand.value, operand.unit)
                result = result + seconds if op == ast.Operator.ADD else result - seconds
            elif result_is_date and operand_is_date:
                term, present = self.value(operand)
                presences.append(present)
                result, result_is_date = (result - term) * DAY_SECONDS, False  # whole seconds: an Int
            elif result_is_date:
                assert isinstance(operand, ast.QuantityLiteral), "the checker allows only written durations"
                result = self.date_step(node.operands[0] if step == 0 else None, result, op, operand)
            else:
                term, present = self.value(operand)
                presences.append(present)
                if op == ast.Operator.DIVIDE:
                    # exact division (never Z3's integer division), and none when dividing by zero
                    result, term = _real(result), _real(term)
                    if not (z3.is_rational_value(term) and term.as_fraction() != 0):
                        presences.append(term != 0)
                result = op.apply(result, term)
        self._set_presence(node, presences)
        return result

    def date_step(self, base: ast.Expr | None, current: Term, op: ast.Operator, amount: ast.QuantityLiteral) -> Term:
        code = canonical_code(amount.unit or "")
        sign = 1 if op == ast.Operator.ADD else -1
        if code in ("d", "wk"):
            return current + sign * int(amount.value * (7 if code == "wk" else 1))
        months = sign * int(amount.value) * (12 if code == "a" else 1)
        if isinstance(base, ast.DateLiteral):
            return z3.IntVal(shift_date(base.value.toordinal(), Fraction(months), "mo"), self.ctx)
        assert isinstance(base, ast.NameRef), "the checker guarantees a date fact anchor"
        return self.shift(base.name, months)

    def conditional(self, node: ast.Conditional) -> Term:
        condition = self.boolean(node.condition)
        if isinstance(self.checked.type_of(node), BoolType):
            return z3.If(condition, self.boolean(node.then), self.boolean(node.otherwise))
        then, then_present = self.value(node.then)
        otherwise, otherwise_present = self.value(node.otherwise)
        self._set_presence(node, [z3.If(condition, then_present, otherwise_present)])
        return z3.If(condition, then, otherwise)

    def membership(self, subject: ast.Expr, values: tuple[str, ...], negated: bool) -> Term:
        term, present = self.value(subject)
        kind = self.checked.type_of(subject)
        assert isinstance(kind, EnumType)
        found = z3.And(present, z3.Or([term == kind.values.index(v) for v in values]))
        return z3.Not(found) if negated else found

    def within(self, node: ast.Within) -> Term:
        date, date_present = self.value(node.subject)
        anchor, anchor_present = self.value(node.anchor)
        before = node.direction == ast.Direction.BEFORE
        if isinstance(self.checked.type_of(node.anchor), DateTimeType):
            seconds = step_seconds(node.amount.value, node.amount.unit)
            low, high = (anchor - seconds, anchor) if before else (anchor, anchor + seconds)
            return z3.And(date_present, anchor_present, low <= date, date <= high)
        shifted = self.date_step(node.anchor, anchor, ast.Operator.SUBTRACT if before else ast.Operator.ADD,
                                 node.amount)
        low, high = (shifted, anchor) if before else (anchor, shifted)
        return z3.And(date_present, anchor_present, low <= date, date <= high)

    def block(self, node: ast.Block) -> Term:
        items = [self.boolean(item.body) for item in node.items]
        match node.kind:
            case ast.BlockKind.ALL:
                return z3.And(items)
            case ast.BlockKind.ANY:
                return z3.Or(items)
            case ast.BlockKind.AT_LEAST:
                return z3.Sum([z3.If(item, 1, 0) for item in items]) >= node.count
            case _:
                assert_never(node.kind)


def _real(term: Term) -> Term:
    return z3.ToReal(term) if z3.is_int(term) else term
