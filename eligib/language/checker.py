"""Check a parsed protocol: names, types, units, subgroup guards, duplicates. Reports every error, sorted.

The result, a CheckedProtocol, is what later stages require: they may assume every name
resolves, every expression is well typed and every quantity's unit is known.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import assert_never

from eligib.language import ast
from eligib.language.diagnostics import Diagnostic, DiagnosticError, error, suggest, warning
from eligib.limits import MAX_EXPANDED_DEPTH
from eligib.language.source import SourceFile
from eligib.values.units import DURATION, PLAIN, Kind, UnitError, canonical_code, dimension_name, parse_unit

HEADER_KEYS = ("title", "version", "registry")
FUNCTIONS = ("min", "max")


# ---------------------------------------------------------------------- types


@dataclass(frozen=True)
class BoolType:
    def __str__(self) -> str:
        return "a condition (true/false)"


@dataclass(frozen=True)
class NumType:
    kind: Kind  # values of one kind convert into each other (units.Kind)
    unit: str | None  # a unit as written, for messages; None for a plain number
    integer: bool = False

    def __str__(self) -> str:
        if self.unit is None:
            return "a plain number"
        if self.kind == PLAIN:
            return f"a percentage or ratio (`{self.unit}`)"
        return f"{dimension_name(self.kind)} (`{self.unit}`)"


@dataclass(frozen=True)
class DateType:
    def __str__(self) -> str:
        return "a date"


@dataclass(frozen=True)
class EnumType:
    fact: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"one of ({', '.join(self.values)})"


Type = BoolType | NumType | DateType | EnumType
BOOL = BoolType()
DATE = DateType()


@dataclass(frozen=True)
class FactInfo:
    """A declared fact with its resolved type, canonical range bounds and guard."""

    decl: ast.FactDecl
    type: Type
    low: Fraction | int | None  # canonical units, or a day number for dates
    high: Fraction | int | None
    # declared substance-specific conversions: other kind of unit -> canonical value per canonical unit
    conversions: dict[Kind, Fraction] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.decl.name

    @property
    def unit(self) -> str | None:
        return self.decl.type.unit

    @property
    def optional(self) -> bool:
        return self.decl.optional

    @property
    def guard(self) -> ast.Expr | None:
        return self.decl.guard


@dataclass
class CheckedProtocol:
    """A protocol that passed checking, with lookup tables for the later stages."""

    protocol: ast.Protocol
    source: SourceFile
    facts: dict[str, FactInfo]
    definitions: dict[str, ast.Definition]
    criteria: dict[str, ast.Criterion]
    types: dict[int, Type] = field(repr=False)
    assertions: dict[str, ast.Assertion] = field(default_factory=dict)
    bindings: dict[str, ast.Binding] = field(default_factory=dict)
    assumptions: dict[str, ast.Assumption] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)
    _facts_of: dict[int, frozenset[str]] = field(default_factory=dict, repr=False)
    _texts: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.protocol.header.name

    def facts_of(self, node: ast.Expr) -> frozenset[str]:
        """The facts an expression depends on, through definitions (cached per node)."""
        key = id(node)
        found = self._facts_of.get(key)
        if found is None:
            names: set[str] = set()
            stack, expanded = [node], set()
            while stack:
                current = stack.pop()
                if isinstance(current, ast.NameRef):
                    if current.name in self.facts:
                        names.add(current.name)
                    elif current.name in self.definitions and current.name not in expanded:
                        expanded.add(current.name)
                        stack.append(self.definitions[current.name].body)
                stack.extend(ast.children(current))
            found = self._facts_of[key] = frozenset(names)
        return found

    def named_items(self, node: ast.Expr) -> list[ast.BlockItem]:
        """Items of the blocks directly under a node (through definitions and `and`)."""
        if isinstance(node, ast.NameRef) and node.name in self.definitions:
            return self.named_items(self.definitions[node.name].body)
        if isinstance(node, ast.Block):
            return list(node.items)
        if isinstance(node, ast.And):
            return [item for op in node.operands for item in self.named_items(op)]
        return []

    def paths(self, node: ast.Expr, prefix: str = "", enclosing: tuple = ()) -> Iterator[tuple[str, tuple]]:
        """Every named path under a node: (dotted name, the bodies that must hold to take it)."""
        for item in self.named_items(node):
            if item.name is None:
                yield from self.paths(item.body, prefix, enclosing)
                continue
            dotted, chain = f"{prefix}{item.name}", enclosing + (item.body,)
            yield dotted, chain
            yield from self.paths(item.body, dotted + ".", chain)

    def text(self, node: ast.Expr) -> str:
        """An expression as the author wrote it (printed again when it spans lines)."""
        key = id(node)
        text = self._texts.get(key)
        if text is None:
            from eligib.language.printer import to_text

            written = self.source.span_text(node.span) if node.span is not None else None
            text = self._texts[key] = written if written is not None else to_text(node)
        return text

    def type_of(self, node: ast.Expr) -> Type:
        return self.types[id(node)]


def check(protocol: ast.Protocol, source: SourceFile) -> CheckedProtocol:
    """Check a parsed protocol; raise DiagnosticError listing every error (warnings ride along)."""
    checker = _Checker(protocol, source)
    checked = checker.run()
    errors = [d for d in checker.diagnostics if d.severity == "error"]
    if errors:
        raise DiagnosticError(checker.diagnostics, {source.path: source})
    return checked


def day_number(value) -> int:
    return value.toordinal()


class _Checker:
    def __init__(self, protocol: ast.Protocol, source: SourceFile) -> None:
        self.protocol = protocol
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self.facts: dict[str, FactInfo] = {}
        self.definitions: dict[str, ast.Definition] = {}
        self.criteria: dict[str, ast.Criterion] = {}
        self.types: dict[int, Type] = {}
        self.used_facts: set[str] = set()
        self.used_definitions: set[str] = set()
        self.definition_types: dict[str, Type] = {}
        self.in_progress: list[str] = []

    def report(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    # ------------------------------------------------------------------ run
    def run(self) -> CheckedProtocol:
        self.check_header()
        self.declare_facts()
        self.declare_definitions()
        if not self.check_depth():
            self.diagnostics.sort(key=Diagnostic.sort_key)
            return CheckedProtocol(self.protocol, self.source, self.facts, self.definitions, {}, self.types)
        for fact in self.protocol.facts:
            if fact.guard is not None:
                self.expect_bool(fact.guard, f"the condition of fact `{fact.name}`")
        for name in self.definitions:
            self.definition_type(name)
        self.check_criteria()
        self.check_assertions()
        self.check_bindings()
        self.check_guards()
        self.report_unused()
        self.diagnostics.sort(key=Diagnostic.sort_key)
        return CheckedProtocol(self.protocol, self.source, self.facts, self.definitions, self.criteria,
                               self.types, assertions=self.assertions, bindings=self.bindings,
                               assumptions=self.assumptions,
                               warnings=[d for d in self.diagnostics if d.severity == "warning"])

    def check_depth(self) -> bool:
        """Nesting counted through definitions stays within the limit: every later stage walks
        expressions recursively, and a chain of definitions nests as deeply as one long expression."""
        depths = _definition_depths(self.definitions)
        roots: list[tuple[str, ast.Expr]] = [(f"criterion `{c.id}`", part) for c in self.protocol.criteria
                                             for part in (c.guard, c.body) if part is not None]
        roots += [(f"definition `{name}`", d.body) for name, d in self.definitions.items()]
        roots += [(f"`{s.id}`", s.body) for s in self.protocol.assertions + self.protocol.assumptions]
        roots += [(f"the condition of fact `{f.name}`", f.guard) for f in self.protocol.facts if f.guard is not None]
        fine = True
        for what, root in roots:
            uses_too_deep = any(depths.get(node.name, 0) > MAX_EXPANDED_DEPTH for _, node in _levels(root)
                                if isinstance(node, ast.NameRef))
            if _expanded_depth(root, depths) > MAX_EXPANDED_DEPTH:
                fine = False
                if uses_too_deep:
                    continue  # reported where the chain first grows too deep
                self.report(error("too-deep", f"{what} nests more than {MAX_EXPANDED_DEPTH} operators deep, counting "
                                  "through the definitions it uses", root.span, "too deep",
                                  help="flatten the chain of definitions; see docs/limits.md"))
        return fine

    def check_header(self) -> None:
        header = self.protocol.header
        seen: set[str] = set()
        for item in header.items:
            if item.key not in HEADER_KEYS:
                self.report(error("unknown-header-field", f"unknown header field `{item.key}`", item.span,
                                  "not a header field", help=suggest(item.key, HEADER_KEYS)
                                  or f"header fields are {', '.join(HEADER_KEYS)}"))
            elif item.key in seen:
                self.report(error("duplicate-header-field", f"header field `{item.key}` is given twice",
                                  item.span, "second definition"))
            seen.add(item.key)
        for required in ("title", "version"):
            if required not in seen:
                self.report(error("missing-header-field", f"the protocol header has no `{required}`",
                                  header.span, "in this header", help=f'add `{required}: "..."`'))

    # ---------------------------------------------------------------- facts
    def declare_facts(self) -> None:
        for fact in self.protocol.facts:
            if fact.name in self.facts:
                self.report(error("duplicate-fact", f"fact `{fact.name}` is declared twice", fact.span,
                                  "declared again here",
                                  help=f"the first declaration is at {self.facts[fact.name].decl.span}"))
                continue
            fact_type = self.fact_type(fact)
            conversions = self.check_conversions(fact, fact_type)
            low, high = self.bound(fact, fact.low, fact_type), self.bound(fact, fact.high, fact_type)
            if low is not None and high is not None and low > high:
                self.report(error("empty-range", f"the range of `{fact.name}` is empty", fact.low.span,
                                  "lower bound is above the upper bound", help="write `from LOW to HIGH`"))
            self.facts[fact.name] = FactInfo(fact, fact_type, low, high, conversions)

    def fact_type(self, fact: ast.FactDecl) -> Type:
        declared = fact.type
        kind = declared.kind
        if kind == "boolean":
            return BOOL
        if kind == "date":
            return DATE
        if kind == "enum":
            seen: set[str] = set()
            for value in declared.values:
                if value in seen:
                    self.report(error("duplicate-enum-value", f"value `{value}` is listed twice for `{fact.name}`",
                                      declared.span))
                seen.add(value)
            return EnumType(fact.name, tuple(dict.fromkeys(declared.values)))
        unit_kind = self.unit_kind(declared.unit, declared.span) if declared.unit else PLAIN
        return NumType(unit_kind, declared.unit, integer=(kind == "integer"))

    def unit_kind(self, unit: str, span) -> Kind:
        try:
            return parse_unit(unit).kind
        except UnitError as exc:
            self.report(error("unknown-unit", f"unknown unit `{unit}`", span, "not a unit",
                              help=f"{exc}; use a UCUM code such as U/L, g/L, umol/L, mL/min, %, or years"))
            return PLAIN

    def bound(self, fact: ast.FactDecl, bound: ast.Bound | None, fact_type: Type) -> Fraction | int | None:
        if bound is None:
            return None
        if isinstance(fact_type, DateType):
            if not isinstance(bound.value, Fraction):
                return day_number(bound.value)
            self.report(error("type-mismatch", f"the range of date `{fact.name}` needs dates", bound.span,
                              "not a date", help="write dates as YYYY-MM-DD"))
            return None
        if not isinstance(fact_type, NumType) or not isinstance(bound.value, Fraction):
            self.report(error("type-mismatch", f"`{fact.name}` is {fact_type}; it cannot have a numeric range",
                              bound.span, "range not allowed here"))
            return None
        if (bound.unit is None) != (fact_type.unit is None):
            self.report(self.unit_presence_error(bound.text, fact_type, bound.span))
            return None
        if bound.unit is not None:
            try:
                unit = parse_unit(bound.unit)
            except UnitError:
                self.report(error("unknown-unit", f"unknown unit `{bound.unit}`", bound.span, "not a unit"))
                return None
            if unit.kind != fact_type.kind:
                self.report(error("unit-mismatch", f"`{bound.text}` cannot bound `{fact.name}`, which is {fact_type}",
                                  bound.span, "incompatible unit", help=f"give the bound in `{fact_type.unit}`"))
                return None
            return bound.value * unit.factor
        return bound.value

    def check_conversions(self, fact: ast.FactDecl, fact_type: Type) -> dict[Kind, Fraction]:
        """`where 1 mg/dL = 88.4 umol/L`: one side in the fact's kind of unit, the other in another kind."""
        found: dict[Kind, Fraction] = {}
        for conversion in fact.conversions:
            units = [conversion.left.unit, conversion.right.unit]
            if not isinstance(fact_type, NumType) or fact_type.unit is None or None in units:
                self.report(error("bad-conversion", "a conversion needs a quantity fact and units on both sides",
                                  conversion.span, "not a unit conversion",
                                  help="write e.g. `where 1 mg/dL = 88.4 umol/L`"))
                continue
            try:
                kinds = [parse_unit(u).kind for u in units]
            except UnitError as exc:
                self.report(error("unknown-unit", f"unknown unit in conversion: {exc}", conversion.span))
                continue
            if fact_type.kind not in kinds or kinds[0] == kinds[1] or 0 in (conversion.left.value, conversion.right.value):
                self.report(error("bad-conversion", f"this conversion does not relate `{fact_type.unit}` to "
                                  "another kind of unit", conversion.span, "not a conversion for this fact",
                                  help=f"one side in a unit like `{fact_type.unit}`, the other in the unit to accept"))
                continue
            sides = [(conversion.left, kinds[0]), (conversion.right, kinds[1])]
            (own, _), (other, other_kind) = sorted(sides, key=lambda side: side[1] != fact_type.kind)
            if other_kind in found:
                self.report(error("duplicate-option", f"fact `{fact.name}` has two conversions for "
                                  f"{dimension_name(other_kind)}", conversion.span, "second conversion",
                                  help="keep one"))
                continue
            found[other_kind] = (own.value * parse_unit(own.unit).factor) / (other.value * parse_unit(other.unit).factor)
        return found

    def unit_presence_error(self, text: str, fact_type: NumType, span) -> Diagnostic:
        if fact_type.unit is None:
            return error("unit-mismatch", f"`{text}` has a unit, but the fact is a plain number", span,
                         "unit not expected", help="write the bound without a unit")
        return error("unit-mismatch", f"`{text}` has no unit, but the fact is {fact_type}", span, "needs a unit",
                     help=f"write the unit, e.g. `{text} {fact_type.unit}`")

    # ---------------------------------------------------------- definitions
    def declare_definitions(self) -> None:
        for definition in self.protocol.definitions:
            if definition.name in self.definitions:
                self.report(error("duplicate-definition", f"`{definition.name}` is defined twice", definition.span,
                                  "defined again here"))
                continue
            if definition.name in self.facts:
                self.report(error("duplicate-name", f"`{definition.name}` is both a fact and a definition",
                                  definition.span, "already declared as a fact", help="rename one of them"))
                continue
            self.definitions[definition.name] = definition

    def definition_type(self, name: str) -> Type:
        if name in self.definition_types:
            return self.definition_types[name]
        definition = self.definitions[name]
        if name in self.in_progress:
            cycle = " -> ".join(self.in_progress[self.in_progress.index(name):] + [name])
            self.report(error("definition-cycle", f"definition `{name}` refers to itself ({cycle})",
                              definition.span, "defined in terms of itself"))
            return BOOL
        self.in_progress.append(name)
        result = self.expect_bool(definition.body, f"definition `{name}`")
        self.in_progress.pop()
        self.definition_types[name] = result
        return result

    # -------------------------------------------------------------- criteria
    def check_criteria(self) -> None:
        for criterion in self.protocol.criteria:
            if criterion.id in self.criteria:
                self.report(error("duplicate-criterion", f"criterion id `{criterion.id}` is used twice",
                                  criterion.span, "used again here",
                                  help=f"ids must be unique; the first is at {self.criteria[criterion.id].span}"))
                self.expect_bool(criterion.body, f"criterion `{criterion.id}`")
                continue
            if not criterion.record:
                self.report(warning("no-record-text", f"criterion `{criterion.id}` has no `record:` wording",
                                    criterion.span, "no wording", help="quote the registry record's own words"))
            self.criteria[criterion.id] = criterion
            if criterion.guard is not None:
                self.expect_bool(criterion.guard, f"the condition of criterion `{criterion.id}`")
            self.expect_bool(criterion.body, f"criterion `{criterion.id}`")

    def check_bindings(self) -> None:
        """Each binding names a declared fact once, and its source gives that fact's kind of value."""
        self.bindings: dict[str, ast.Binding] = {}
        for binding in self.protocol.bindings:
            info = self.facts.get(binding.fact)
            if info is None:
                self.report(error("unknown-fact", f"binding for unknown fact `{binding.fact}`", binding.span,
                                  "not declared", help=suggest(binding.fact, self.facts) or "declare it under `facts:`"))
                continue
            if binding.fact in self.bindings:
                self.report(error("duplicate-binding", f"fact `{binding.fact}` is bound twice", binding.span,
                                  "bound again here"))
                continue
            self.bindings[binding.fact] = binding
            anchor = self.facts.get(binding.anchor) if binding.anchor else None
            if binding.anchor:
                self.used_facts.add(binding.anchor)
            if binding.anchor and (anchor is None or not isinstance(anchor.type, DateType)):
                dates = [name for name, f in self.facts.items() if isinstance(f.type, DateType)]
                self.report(error("type-mismatch", f"`{binding.anchor}` must be a date fact", binding.span,
                                  "anchor of this binding", help=suggest(binding.anchor, dates)
                                  or f"date facts: {', '.join(dates)}"))
            problem = _binding_problem(binding, info)
            if problem:
                self.report(error("bad-binding", f"binding for `{binding.fact}`: {problem}", binding.span,
                                  "this binding"))

    def check_assertions(self) -> None:
        """Assertions (proved for eligible patients) and assumptions (true of every patient)."""
        self.assertions: dict[str, ast.Assertion] = {}
        self.assumptions: dict[str, ast.Assumption] = {}
        for statement in self.protocol.assertions + self.protocol.assumptions:
            word = "assertion" if isinstance(statement, ast.Assertion) else "assumption"
            table = self.assertions if word == "assertion" else self.assumptions
            if statement.id in table:
                self.report(error(f"duplicate-{word}", f"{word} id `{statement.id}` is used twice",
                                  statement.span, "used again here"))
                continue
            table[statement.id] = statement
            self.expect_bool(statement.body, f"{word} `{statement.id}`")

    def expect_bool(self, expr: ast.Expr, what: str) -> Type:
        found = self.infer(expr)
        if found is not None and not isinstance(found, BoolType):
            self.report(error("type-mismatch", f"{what} must be a condition, but this is {found}", expr.span,
                              "not true/false", help="compare it, e.g. `x >= 10 U/L`"))
        return BOOL

    # ---------------------------------------------------------- expressions
    def infer(self, expr: ast.Expr) -> Type | None:
        """Type of an expression, or None after reporting an error inside it."""
        result = self._infer(expr)
        if result is not None:
            self.types[id(expr)] = result
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
                self.expect_bool(expr.condition, "the condition after `if`")
                then, otherwise = self.infer(expr.then), self.infer(expr.otherwise)
                if then is None or otherwise is None:
                    return None
                if not self.same_kind(then, otherwise):
                    self.report(error("type-mismatch", f"the two branches differ: {then} vs {otherwise}",
                                      expr.otherwise.span, "other branch has another type",
                                      help="both branches of `if ... else` must have the same type and unit"))
                    return None
                return then
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
            case ast.IsNone():
                self.optional_subject(expr)
                return BOOL
            case ast.Within():
                self.within_types(expr)
                return BOOL
            case ast.Block():
                self.block_types(expr)
                return BOOL
            case _:
                assert_never(expr)

    def call_type(self, call: ast.Call) -> Type | None:
        if call.function not in FUNCTIONS:
            self.report(error("unknown-function", f"unknown function `{call.function}`", call.span,
                              "not a function", help=suggest(call.function, FUNCTIONS)
                              or f"functions are {', '.join(FUNCTIONS)}"))
            return None
        types = [self.infer(arg) for arg in call.args]
        if any(t is None for t in types):
            return None
        if len(types) < 2:
            self.report(error("bad-arguments", f"`{call.function}` needs at least two values", call.span,
                              "one value"))
            return None
        first = types[0]
        if not isinstance(first, (NumType, DateType)):
            self.report(error("type-mismatch", f"`{call.function}` takes numbers or dates, but this is {first}",
                              call.args[0].span, "not a number or date"))
            return None
        for arg, found in zip(call.args[1:], types[1:]):
            if not self.same_kind(first, found):
                self.report(self.mismatch(first, found, arg, "<="))
                return None
        if isinstance(first, NumType):
            return NumType(first.kind, first.unit, all(isinstance(t, NumType) and t.integer for t in types))
        return first

    def literal_type(self, literal: ast.QuantityLiteral) -> Type | None:
        if literal.unit is None:
            return NumType(PLAIN, None, integer=literal.value.denominator == 1)
        try:
            return NumType(parse_unit(literal.unit).kind, literal.unit)
        except UnitError as exc:
            self.report(error("unknown-unit", f"unknown unit `{literal.unit}`", literal.span, "not a unit",
                              help=f"{exc}; use a UCUM code such as U/L, g/L, umol/L, mL/min, %, or years"))
            return None

    def name_type(self, ref: ast.NameRef) -> Type | None:
        if ref.name in self.facts:
            self.used_facts.add(ref.name)
            return self.facts[ref.name].type
        if ref.name in self.definitions:
            self.used_definitions.add(ref.name)
            return self.definition_type(ref.name)
        enum_owner = next((f.name for f in self.facts.values()
                           if isinstance(f.type, EnumType) and ref.name in f.type.values), None)
        if enum_owner:
            self.report(error("unknown-fact", f"`{ref.name}` is a value of `{enum_owner}`, not a fact", ref.span,
                              "used as a condition", help=f"write `{enum_owner} is {ref.name}`"))
            return None
        hint = suggest(ref.name, list(self.facts) + list(self.definitions))
        self.report(error("unknown-fact", f"unknown fact `{ref.name}`", ref.span,
                          "not declared in this protocol",
                          help=hint or "declare it under `facts:` or define it with `define`"))
        return None

    def compare_type(self, expr: ast.Compare) -> Type:
        types = [self.infer(operand) for operand in expr.operands]
        for index, operator in enumerate(expr.operators):
            left, right = types[index], types[index + 1]
            if left is None or right is None:
                continue
            right_node = expr.operands[index + 1]
            if isinstance(left, (EnumType, BoolType)) or isinstance(right, (EnumType, BoolType)):
                if isinstance(left, BoolType) and isinstance(right, BoolType) and operator in ("==", "!="):
                    continue
                enum = left if isinstance(left, EnumType) else right
                hint = (f"compare a value of `{enum.fact}` with `is` or `in (...)`" if isinstance(enum, EnumType)
                        else "combine conditions with `and`, `or`, `not`")
                self.report(error("type-mismatch", f"cannot compare {left} with {right} using `{operator}`",
                                  expr.span, "not comparable", help=hint))
            elif not self.same_kind(left, right):
                self.report(self.mismatch(left, right, right_node, operator))
        return BOOL

    def same_kind(self, left: Type, right: Type) -> bool:
        if isinstance(left, NumType) and isinstance(right, NumType):
            return left.kind == right.kind and (left.unit is None) == (right.unit is None)
        if isinstance(left, EnumType) and isinstance(right, EnumType):
            return left.fact == right.fact
        return type(left) is type(right)

    def mismatch(self, left: Type, right: Type, node: ast.Expr, operator: str) -> Diagnostic:
        verb = "compare" if operator not in "+-" else ("add" if operator == "+" else "subtract")
        if isinstance(left, NumType) and isinstance(right, NumType):
            if right.unit is None and left.unit is not None:
                example = f"{node.text} {left.unit}" if isinstance(node, ast.QuantityLiteral) else f"... {left.unit}"
                return error("unit-mismatch", f"cannot {verb} {left} and a plain number", node.span,
                             "this number has no unit", help=f"write the unit, e.g. `{example}`")
            if left.unit is None and right.unit is not None:
                return error("unit-mismatch", f"cannot {verb} a plain number and {right}", node.span,
                             "this has a unit", help="drop the unit, or give the other side one")
            hint = f"use a unit compatible with `{left.unit}`" if left.unit else "write the number without a unit"
            return error("unit-mismatch", f"cannot {verb} {left} and {right}", node.span,
                         "incompatible unit", help=hint)
        return error("type-mismatch", f"cannot {verb} {left} and {right} using `{operator}`", node.span,
                     "different type")

    def arithmetic_type(self, expr: ast.Arithmetic) -> Type | None:
        types = [self.infer(operand) for operand in expr.operands]
        if any(t is None for t in types):
            return None
        result = types[0]
        for index, operator in enumerate(expr.operators):
            operand_node, right = expr.operands[index + 1], types[index + 1]
            result = self.binary_type(result, operator, right, expr.operands[: index + 1], operand_node, expr, index)
            if result is None:
                return None
        return result

    def binary_type(self, left, operator, right, left_nodes, right_node, whole, step) -> Type | None:
        if isinstance(left, DateType) or isinstance(right, DateType):
            return self.date_arithmetic(left, operator, right, right_node, whole, step)
        if not isinstance(left, NumType) or not isinstance(right, NumType):
            bad = left if not isinstance(left, NumType) else right
            self.report(error("type-mismatch", f"arithmetic needs numbers, but this is {bad}", whole.span,
                              "not a number"))
            return None
        if operator in "+-":
            if not self.same_kind(left, right):
                self.report(self.mismatch(left, right, right_node, operator))
                return None
            return NumType(left.kind, left.unit, left.integer and right.integer)
        left_constant = all(self.is_constant(node) for node in left_nodes)
        right_constant = self.is_constant(right_node)
        if not left_constant and not right_constant or operator == "/" and not right_constant:
            self.report(error("nonlinear", "only constants may multiply or divide facts", whole.span,
                              "product of two facts", help="write thresholds like `3 * alt_uln`"))
            return None
        if operator == "/" and self.constant_value(right_node) == 0:
            self.report(error("division-by-zero", f"division by zero: `{self.source_text(right_node)}` is 0", right_node.span,
                              "divides by zero", help="divide by a number that is not zero"))
            return None
        scalar, other = (left, right) if left.unit is None and operator == "*" else (right, left)
        if scalar.unit is not None:
            self.report(error("unit-mismatch", f"cannot {'multiply' if operator == '*' else 'divide'} {left} "
                              f"by {right}", whole.span, "both sides have units",
                              help="multiply or divide by a plain number"))
            return None
        return NumType(other.kind, other.unit)

    def date_arithmetic(self, left, operator, right, right_node, whole, step) -> Type | None:
        if isinstance(left, DateType) and isinstance(right, DateType) and operator == "-":
            return NumType(DURATION, "d", integer=True)
        duration = right if isinstance(left, DateType) else left
        if operator in "+-" and isinstance(left, DateType) and isinstance(duration, NumType) \
                and duration.kind == DURATION and isinstance(right_node, ast.QuantityLiteral) \
                and canonical_code(right_node.unit or "") in ("d", "wk", "mo", "a"):
            self.calendar_step(whole.operands[0] if step == 0 else None, right_node)
            return DATE
        self.report(error("type-mismatch", f"cannot apply `{operator}` to {left} and {right}", whole.span,
                          "not date arithmetic",
                          help="add or subtract a written duration such as `28 days` or `6 months`"))
        return None

    def is_constant(self, node: ast.Expr) -> bool:
        match node:
            case ast.QuantityLiteral():
                return True
            case ast.Negate():
                return self.is_constant(node.operand)
            case ast.Arithmetic():
                return all(self.is_constant(operand) for operand in node.operands)
            case _:
                return False

    def constant_value(self, node: ast.Expr) -> Fraction | None:
        """The exact value of a constant expression, in canonical units; None if it divides by zero."""
        from eligib.logic.evaluate import literal_value

        match node:
            case ast.QuantityLiteral():
                return literal_value(node) if self.types.get(id(node)) is not None else None
            case ast.Negate():
                inner = self.constant_value(node.operand)
                return None if inner is None else -inner
            case ast.Arithmetic():
                values = [self.constant_value(operand) for operand in node.operands]
                if any(value is None for value in values):
                    return None
                result = values[0]
                for operator, value in zip(node.operators, values[1:]):
                    if operator == "/" and value == 0:
                        return None
                    result = {"+": result + value, "-": result - value, "*": result * value}.get(operator) \
                        if operator != "/" else result / value
                return result
            case _:
                return None

    def enum_values(self, subject: ast.Expr, values: tuple[str, ...], span) -> None:
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

    def optional_subject(self, expr: ast.IsNone) -> None:
        if self.infer(expr.subject) is None:
            return
        if not isinstance(expr.subject, ast.NameRef) or expr.subject.name not in self.facts:
            self.report(error("type-mismatch", "`is none` applies to a fact", expr.subject.span, "not a fact"))
        elif not self.facts[expr.subject.name].optional:
            self.report(error("not-optional", f"fact `{expr.subject.name}` is never none", expr.subject.span,
                              "not declared `or none`",
                              help=f"add `or none` to the declaration of `{expr.subject.name}`"))

    def within_types(self, expr: ast.Within) -> None:
        for part, role in ((expr.subject, "the date before `within`"), (expr.anchor, "the anchor date")):
            found = self.infer(part)
            if found is not None and not isinstance(found, DateType):
                self.report(error("type-mismatch", f"{role} must be a date, but this is {found}", part.span,
                                  "not a date"))
        amount = expr.amount
        code = canonical_code(amount.unit or "")
        if code not in ("d", "wk", "mo", "a"):
            self.report(error("unit-mismatch", f"`{amount.text}` is not a calendar duration", amount.span,
                              "needs days, weeks, months or years", help="write e.g. `within 6 months before`"))
        else:
            self.calendar_step(expr.anchor, amount)
        self.types[id(amount)] = NumType(DURATION, amount.unit)

    def calendar_step(self, anchor: ast.Expr | None, amount: ast.QuantityLiteral) -> None:
        """Dates move by whole days; months and years are calendar steps taken first from a date fact."""
        code = canonical_code(amount.unit or "")
        days = amount.value * (7 if code == "wk" else 1)
        if code in ("d", "wk") and days.denominator != 1:
            self.report(error("unit-mismatch", f"`{amount.text}` is not a whole number of days", amount.span,
                              "dates move by whole days", help="write a whole number of days"))
        if code not in ("mo", "a"):
            return
        if amount.value.denominator != 1:
            self.report(error("unit-mismatch", f"`{amount.text}` is not a whole number of {CALENDAR[code]}",
                              amount.span, "calendar months and years must be whole",
                              help="use whole days for fractions"))
        if not (isinstance(anchor, ast.DateLiteral)
                or isinstance(anchor, ast.NameRef) and anchor.name in self.facts):
            self.report(error("calendar-anchor", f"`{amount.text}` must be counted from a date fact or a date",
                              amount.span, "months and years step from a date fact",
                              help="put the month or year step first, right after a date fact: "
                                   "`screening_date - 6 months - 2 days`"))

    def block_types(self, block: ast.Block) -> None:
        names: set[str] = set()
        for item in block.items:
            if item.name is not None:
                if item.name in names:
                    self.report(error("duplicate-path", f"alternative name `{item.name}` is used twice in this block",
                                      item.span, "used again here"))
                names.add(item.name)
            self.expect_bool(item.body, f"alternative `{item.name}`" if item.name else "each item of the block")
        if block.kind == "at_least" and not 1 <= block.count <= len(block.items):
            self.report(error("bad-count", f"`at least {block.count} of` needs between 1 and {len(block.items)}",
                              block.span, f"{len(block.items)} items here"))

    # -------------------------------------------------------------- guards
    def check_guards(self) -> None:
        """Every use of a subgroup fact must sit under that fact's own condition."""
        reported: set[int] = set()
        for fact in self.protocol.facts:
            if fact.guard is not None:
                self.guarded_uses(fact.guard, (), reported, set())
        for criterion in self.criteria.values():
            context: tuple[ast.Expr, ...] = ()
            if criterion.guard is not None:
                self.guarded_uses(criterion.guard, (), reported, set())
                context = tuple(_conjuncts(criterion.guard))
            self.guarded_uses(criterion.body, context, reported, set())
        for statement in list(self.assertions.values()) + list(self.assumptions.values()):
            self.guarded_uses(statement.body, (), reported, set())
        for name, definition in self.definitions.items():
            if name not in self.used_definitions:
                self.guarded_uses(definition.body, (), reported, set())

    def guarded_uses(self, expr: ast.Expr, context: tuple[ast.Expr, ...], reported: set[int],
                     expanding: set[str]) -> None:
        for node, ctx in _walk_with_context(expr, context):
            if not isinstance(node, ast.NameRef):
                continue
            if node.name in self.definitions and node.name not in expanding:
                self.guarded_uses(self.definitions[node.name].body, ctx, reported, expanding | {node.name})
            info = self.facts.get(node.name)
            if info is None or info.guard is None or _holds_in(info.guard, ctx) or id(node) in reported:
                continue
            reported.add(id(node))
            condition = self.source_text(info.guard)
            self.report(error("unguarded-fact", f"fact `{node.name}` exists only if `{condition}`", node.span,
                              "used where that condition is not known to hold",
                              help=f"write `{condition} and {node.name}` or `{condition} implies ...`, or give "
                                   f"the criterion `only if {condition}`"))

    def source_text(self, expr: ast.Expr) -> str:
        written = self.source.span_text(expr.span) if expr.span is not None else None
        return written if written is not None else "its condition"

    def report_unused(self) -> None:
        for name, info in self.facts.items():
            if name not in self.used_facts:
                self.report(warning("unused-fact", f"fact `{name}` is declared but never used", info.decl.span,
                                    "never used", help="remove it, or use it in a criterion"))
        for name, definition in self.definitions.items():
            if name not in self.used_definitions:
                self.report(warning("unused-definition", f"definition `{name}` is never used", definition.span,
                                    "never used"))


CALENDAR = {"d": "days", "wk": "weeks", "mo": "months", "a": "years"}


def _levels(root: ast.Expr) -> Iterator[tuple[int, ast.Expr]]:
    """Every node under `root` with its depth (1 for the root), without recursion."""
    stack = [(1, root)]
    while stack:
        level, node = stack.pop()
        yield level, node
        stack.extend((level + 1, child) for child in ast.children(node))


def _expanded_depth(root: ast.Expr, depths: dict[str, int]) -> int:
    """The depth of an expression with every definition it names written out in place."""
    return max(level + (depths.get(node.name, 0) if isinstance(node, ast.NameRef) else 0)
               for level, node in _levels(root))


def _definition_depths(definitions: dict[str, ast.Definition]) -> dict[str, int]:
    """Each definition's depth written out in full, in dependency order (a cycle counts once; the
    checker reports it as `definition-cycle`)."""
    uses = {name: {node.name for _, node in _levels(d.body) if isinstance(node, ast.NameRef)
                   and node.name in definitions} for name, d in definitions.items()}
    depths: dict[str, int] = {}
    for start in definitions:
        stack, visiting = [start], {start}
        while stack:
            name = stack[-1]
            waiting = [used for used in uses[name] if used not in depths and used not in visiting]
            if waiting:
                stack.append(waiting[0])
                visiting.add(waiting[0])
                continue
            stack.pop()
            depths[name] = _expanded_depth(definitions[name].body, depths)
    return depths


def _binding_problem(binding: ast.Binding, info: FactInfo) -> str:
    """Why a binding cannot give its fact's kind of value, or ""."""
    kind = info.type
    if binding.part == "date" and not isinstance(kind, DateType):
        return f"a `date` source needs a date fact, but `{info.name}` is {kind}"
    if binding.part == "exists" and not isinstance(kind, BoolType):
        return f"an `exists` source needs a boolean fact, but `{info.name}` is {kind}"
    if binding.part.startswith("reference") and not (isinstance(kind, NumType) and kind.unit):
        return f"a reference limit needs a quantity fact, but `{info.name}` is {kind}"
    if binding.source == "age" and not (isinstance(kind, NumType) and kind.kind == DURATION):
        return f"`age at` needs a fact in years, but `{info.name}` is {kind}"
    if binding.source == "gender" and not isinstance(kind, EnumType):
        return f"`gender` needs an enumeration fact, but `{info.name}` is {kind}"
    if binding.part in ("value", "reference_high", "reference_low") and binding.source in (
            "procedure", "immunization", "condition"):
        return f"a {binding.source} gives a `date` or `exists`, not a value"
    if binding.anchor == binding.fact:
        return "a fact cannot be counted back from itself"
    if binding.window is not None and binding.anchor is None:
        return "`within` needs `before ANCHOR` to count back from"
    if binding.window is not None and canonical_code(binding.window.unit or "") not in ("d", "wk", "mo", "a"):
        return f"`within {binding.window.text}` is not a calendar duration"
    if binding.absent == "none" and not info.optional:
        return f"`absent means none` needs `{info.name}` declared `or none`"
    if binding.absent == "false" and not isinstance(kind, BoolType):
        return "`absent means false` needs a boolean fact"
    return ""


def _conjuncts(expr: ast.Expr) -> Iterator[ast.Expr]:
    if isinstance(expr, ast.And):
        for operand in expr.operands:
            yield from _conjuncts(operand)
    elif isinstance(expr, ast.Block) and expr.kind == "all":
        for item in expr.items:
            yield from _conjuncts(item.body)
    else:
        yield expr


NEGATED_COMPARATOR = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def _holds_in(guard: ast.Expr, context: tuple[ast.Expr, ...]) -> bool:
    known = set(context) | {_negation(item) for item in context if isinstance(item, ast.Not)}
    return all(part in known for part in _conjuncts(guard))


def _negation(node: ast.Not) -> ast.Expr:
    """`not (age > 16 years)` read as `age <= 16 years`, so an `else` branch knows its condition."""
    inner = node.operand
    if isinstance(inner, ast.Compare) and len(inner.operators) == 1:
        return ast.Compare(inner.operands, (NEGATED_COMPARATOR[inner.operators[0]],))
    if isinstance(inner, ast.IsValue):
        return ast.IsValue(inner.subject, inner.value, not inner.negated)
    if isinstance(inner, ast.Not):
        return inner.operand
    return node


def _walk_with_context(expr: ast.Expr, context: tuple[ast.Expr, ...]) -> Iterator[tuple[ast.Expr, tuple]]:
    """Each node with the conditions known to hold where it is evaluated (short-circuit reading)."""
    stack: list[tuple[ast.Expr, tuple]] = [(expr, context)]
    while stack:
        node, ctx = stack.pop()
        yield node, ctx
        match node:
            case ast.And():
                known = ctx
                for operand in node.operands:
                    stack.append((operand, known))
                    known = known + tuple(_conjuncts(operand))
            case ast.Or():
                known = ctx
                for operand in node.operands:
                    stack.append((operand, known))
                    known = known + (ast.Not(operand),)
            case ast.Block():
                known = ctx
                for item in node.items:
                    stack.append((item.body, known))
                    if node.kind == "all":
                        known = known + tuple(_conjuncts(item.body))
            case ast.Conditional():
                stack.append((node.condition, ctx))
                stack.append((node.then, ctx + tuple(_conjuncts(node.condition))))
                stack.append((node.otherwise, ctx + (ast.Not(node.condition),)))
            case ast.Implies():
                stack.append((node.antecedent, ctx))
                stack.append((node.consequent, ctx + tuple(_conjuncts(node.antecedent))))
            case ast.Not() | ast.Negate():
                stack.append((node.operand, ctx))
            case ast.Compare() | ast.Arithmetic():
                stack.extend((operand, ctx) for operand in node.operands)
            case ast.IsValue() | ast.InSet() | ast.IsNone():
                stack.append((node.subject, ctx))
            case ast.Call():
                stack.extend((arg, ctx) for arg in node.args)
            case ast.Within():
                stack.append((node.subject, ctx))
                stack.append((node.anchor, ctx))
            case _:
                pass


def load(path: str) -> CheckedProtocol:
    """Parse and check a protocol file."""
    from eligib.language.loader import load_protocol

    return check(*load_protocol(path))


def load_text(text: str, path: str = "<protocol>") -> CheckedProtocol:
    from eligib.language.parser import parse

    return check(parse(text, path), SourceFile(path, text))
