"""Where one missing fact's value can change the truth of a condition: its thresholds for one patient.

Every condition that reads the fact, the other facts fixed at the patient's values, changes its truth only
at finitely many points: a comparison of a number `(a*v + b) / (c*v + d)` with a constant at its zero and
pole (exact rationals), a date window or a date comparison where a monotone function of the date crosses
a bound (found by bisection over day numbers, exact on the integer time line). Between two consecutive
points every such condition, and so the whole protocol's verdict, is constant: guidance tries one value
per piece (conditions.py) instead of guessing the condition from the protocol's text.

The search gives up (`Interacts`) where the fact shares a condition with another missing fact (a
`bilirubin <= 1.5 * bilirubin_uln` with both missing): no single threshold exists there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.logic.evaluate import Evaluator, literal_value, window
from eligib.logic.solver import settled
from eligib.values.types import NONE, DateTimeType, DateType, History, ListType, NumType, Value

Item = Mapping[str, Any]


class Interacts(Exception):
    """The fact meets another missing fact, or an expression guidance does not analyse, in one condition."""

    def __init__(self, nodes: list[ast.Expr], others: frozenset[str]) -> None:
        super().__init__("interacts")
        self.nodes, self.others = nodes, others


@dataclass(frozen=True)
class Mobius:
    """`(a*v + b) / (c*v + d)` in the fact's value v (canonical units)."""

    a: Fraction
    b: Fraction
    c: Fraction
    d: Fraction

    @classmethod
    def constant(cls, value: Fraction) -> Mobius:
        return cls(Fraction(0), value, Fraction(0), Fraction(1))

    @property
    def constant_value(self) -> Fraction | None:
        return self.b / self.d if self.a == 0 and self.c == 0 else None

    @property
    def affine(self) -> bool:
        return self.c == 0

    def plus(self, other: Mobius) -> Mobius | None:
        if (k := other.constant_value) is not None:
            return Mobius(self.a + k * self.c, self.b + k * self.d, self.c, self.d)
        if (k := self.constant_value) is not None:
            return other.plus(self)
        if self.affine and other.affine:
            return Mobius(self.a / self.d + other.a / other.d, self.b / self.d + other.b / other.d,
                          Fraction(0), Fraction(1))
        return None

    def negated(self) -> Mobius:
        return Mobius(-self.a, -self.b, self.c, self.d)

    def times(self, other: Mobius) -> Mobius | None:
        if (k := other.constant_value) is not None:
            return Mobius(k * self.a, k * self.b, self.c, self.d)
        if self.constant_value is not None:
            return other.times(self)
        return None

    def over(self, other: Mobius) -> Mobius | None:
        if (k := other.constant_value) is not None:
            return Mobius(self.a, self.b, k * self.c, k * self.d) if k != 0 else None
        if self.affine and other.affine:  # (a v + b)/d / ((a' v + b')/d') = (d' a v + d' b) / (d a' v + d b')
            return Mobius(other.d * self.a, other.d * self.b, self.d * other.a, self.d * other.b)
        return None

    def points(self) -> set[Fraction]:
        """Where the expression is zero or has no value (its pole): the only places its sign changes."""
        found = set()
        if self.a != 0:
            found.add(-self.b / self.a)
        if self.c != 0:
            found.add(-self.d / self.c)
        return found


class Thresholds:
    """The points where a fact's value can change any condition of the protocol, for one patient."""

    def __init__(self, checked: CheckedProtocol, facts: Mapping[str, Value], fact: str) -> None:
        self.checked, self.fact = checked, fact
        self.facts = {name: value for name, value in facts.items() if name != fact}
        self.info = checked.facts[fact]
        self.points: set[Any] = set()
        self.visited: set[int] = set()
        self.known = Evaluator(checked, self.facts)  # the patient without the fact

    def find(self) -> set[Any]:
        """Every threshold (canonical values); Interacts when the fact shares a condition with another
        missing fact or sits in an expression the analysis does not cover."""
        roots: list[ast.Expr] = []
        for criterion in self.checked.criteria.values():
            roots += [criterion.body] if criterion.guard is None else [criterion.guard, criterion.body]
        roots += [assumption.body for assumption in self.checked.assumptions.values()]
        roots += [info.guard for info in self.checked.facts.values() if info.guard is not None]
        for root in roots:
            self.walk(root, None)
        return self.points

    # ------------------------------------------------------------------ the walk
    def reads(self, node: ast.Expr) -> bool:
        return self.fact in self.checked.facts_of(node)

    def walk(self, node: ast.Expr, item: Item | None) -> None:
        """Thresholds under `node`; a node the other facts already decide cannot depend on the fact."""
        if not self.reads(node) or (item is None and node.nid in self.visited):
            return
        if node.nid not in self.checked.field_refs and self.evaluator(item).eval(node) is not None:
            return
        if item is None:
            self.visited.add(node.nid)
        match node:
            case ast.NameRef() if node.name in self.checked.definitions:
                self.walk(self.checked.definitions[node.name].body, item)
            case ast.Compare():
                for index in range(len(node.operators)):
                    self.link(node, index, item)
            case ast.Within():
                self.within(node, item)
            case ast.Query():
                self.query(node, item)
            case ast.IsNone():
                if self.numeric:
                    for shape in self.shapes(node.subject, item):
                        self.points |= shape.points()
            case ast.Call() if not self.numeric:
                raise Interacts([node], frozenset())
        for child in ast.children(node):
            if not isinstance(node, ast.Query):
                self.walk(child, item)

    @property
    def numeric(self) -> bool:
        return isinstance(self.info.type, NumType)

    def evaluator(self, item: Item | None, value: Value | None = None) -> Evaluator:
        if item is None and value is None:
            return self.known
        facts = self.facts if value is None else {**self.facts, self.fact: value}
        return Evaluator(self.checked, facts, item)

    def others(self, node: ast.Expr) -> frozenset[str]:
        """The other facts a node reads that the patient does not give in full."""
        return frozenset(name for name in self.checked.facts_of(node)
                         if name != self.fact and not settled(self.facts.get(name)))

    def query(self, node: ast.Query, item: Item | None) -> None:
        """A history's `where` reads the fact: its thresholds for each listed item (all must be known)."""
        if node.collection == self.fact or node.where is None:
            raise Interacts([node], frozenset())
        history = self.facts.get(node.collection)
        if not isinstance(history, History) or not history.complete:
            raise Interacts([node], frozenset({node.collection}))
        list_type = self.checked.facts[node.collection].type
        assert isinstance(list_type, ListType)
        names = [field.name for field in list_type.fields]
        read = {self.checked.field_refs[n.nid] for n in ast.walk(node.where) if n.nid in self.checked.field_refs}
        for values in history.items:
            fields = dict(zip(names, values, strict=True))
            if any(fields[name] is None for name in read):  # an unknown field the condition reads
                raise Interacts([node], frozenset({node.collection}))
            self.walk(node.where, {**(item or {}), **fields})

    # ------------------------------------------------------------- numbers
    def link(self, node: ast.Compare, index: int, item: Item | None) -> None:
        left, right = node.operands[index], node.operands[index + 1]
        if not (self.reads(left) or self.reads(right)):
            return
        others = self.others(left) | self.others(right)
        if others:
            raise Interacts([node], others)
        if not self.numeric:
            if (self.reads(left) and self.reads(right)) or not (
                    monotone(self.checked, left, self.fact) and monotone(self.checked, right, self.fact)):
                raise Interacts([node], frozenset())
            self.monotone_crossings(lambda v: self.difference(left, right, item, v))
            return
        for one in self.shapes(left, item):
            for two in self.shapes(right, item):
                difference = one.plus(two.negated())
                if difference is None:
                    raise Interacts([node], frozenset())
                self.points |= difference.points()

    def shapes(self, node: ast.Expr, item: Item | None) -> list[Mobius]:
        """The forms a number can take as a function of the fact: one per branch a conditional may take."""
        if not self.reads(node):
            value = self.evaluator(item).eval(node)  # NONE: the comparison is false at every value (any point will do)
            return [Mobius.constant(Fraction(value) if isinstance(value, (int, Fraction)) else Fraction(0))]
        match node:
            case ast.NameRef() if node.name in self.checked.definitions:
                return self.shapes(self.checked.definitions[node.name].body, item)
            case ast.NameRef():
                return [Mobius(Fraction(1), Fraction(0), Fraction(0), Fraction(1))]
            case ast.Negate():
                return [shape.negated() for shape in self.shapes(node.operand, item)]
            case ast.Arithmetic():
                return self.arithmetic(node, item)
            case ast.Call() if node.function in self.checked.tables:
                return self.lookup(node, item)
            case ast.Call():  # min or max: one of its arguments, which one changes where two are equal
                shapes = [shape for arg in node.args for shape in self.shapes(arg, item)]
                for index, one in enumerate(shapes):
                    for two in shapes[index + 1:]:
                        crossing = one.plus(two.negated())
                        if crossing is None:
                            raise Interacts([node], frozenset())
                        self.points |= crossing.points()
                return shapes
            case ast.Conditional():
                chosen = self.evaluator(item).condition(node.condition)
                branches = [node.then] if chosen is True else [node.otherwise] if chosen is False \
                    else [node.then, node.otherwise]
                return [shape for branch in branches for shape in self.shapes(branch, item)]
            case _:
                raise Interacts([node], frozenset())

    def lookup(self, node: ast.Call, item: Item | None) -> list[Mobius]:
        """A banded table keyed by a number that reads the fact: one of its values, which one changes
        where the key crosses a band's edge."""
        table = self.checked.tables[node.function]
        for key in self.shapes(node.args[0], item):
            for row in table.rows:
                for edge in (row.low, row.high):
                    if edge is not None:
                        crossing = key.plus(Mobius.constant(-literal_value(edge)))
                        if crossing is None:
                            raise Interacts([node], frozenset())
                        self.points |= crossing.points()
        return [Mobius.constant(literal_value(row.value)) for row in table.rows]

    def arithmetic(self, node: ast.Arithmetic, item: Item | None) -> list[Mobius]:
        results = self.shapes(node.operands[0], item)
        for op, operand in zip(node.operators, node.operands[1:], strict=True):
            combined = []
            for left in results:
                for right in self.shapes(operand, item):
                    match op:
                        case ast.Operator.ADD:
                            shape = left.plus(right)
                        case ast.Operator.SUBTRACT:
                            shape = left.plus(right.negated())
                        case ast.Operator.MULTIPLY:
                            shape = left.times(right)
                        case ast.Operator.DIVIDE:
                            shape = left.over(right)
                    if shape is None:
                        raise Interacts([node], frozenset())
                    combined.append(shape)
            results = combined
        return results

    # --------------------------------------------------------------- dates
    def difference(self, left: ast.Expr, right: ast.Expr, item: Item | None, value: int) -> Fraction | None:
        """`left - right` with the fact at `value` (day numbers or seconds); None where either has no value."""
        evaluator = self.evaluator(item, value)
        one, two = evaluator.eval(left), evaluator.eval(right)
        if one is None or two is None or one is NONE or two is NONE:
            return None
        return Fraction(one) - Fraction(two)

    def within(self, node: ast.Within, item: Item | None) -> None:
        """A date window: where the subject enters and leaves it as the fact moves."""
        others = self.others(node.subject) | self.others(node.anchor)
        if others:
            raise Interacts([node], others)
        if (self.reads(node.subject) and self.reads(node.anchor)) or not (
                monotone(self.checked, node.subject, self.fact) and monotone(self.checked, node.anchor, self.fact)):
            raise Interacts([node], frozenset())
        instants = isinstance(self.checked.type_of(node.anchor), DateTimeType)

        def bounds(value: int) -> tuple[Fraction, Fraction] | None:
            evaluator = self.evaluator(item, value)
            subject, anchor = evaluator.eval(node.subject), evaluator.eval(node.anchor)
            if subject in (None, NONE) or anchor in (None, NONE):
                return None
            low, high = window(anchor, node, instants)
            return Fraction(subject - low), Fraction(subject - high)

        def side(index: int) -> Callable[[int], Fraction | None]:
            def distance(value: int) -> Fraction | None:
                found = bounds(value)
                return None if found is None else found[index]
            return distance

        self.monotone_crossings(side(0))
        self.monotone_crossings(side(1))

    def monotone_crossings(self, function: Callable[[int], Fraction | None]) -> None:
        """The points where a monotone function of a date fact becomes >= 0 and > 0 (bisection)."""
        spec = self.info
        date_type = spec.type
        assert isinstance(date_type, (DateType, DateTimeType))
        low, high = date_type.bounds(spec)
        for strict in (False, True):
            def test(v: int, strict: bool = strict) -> bool | None:
                found = function(v)
                return None if found is None else (found > 0 if strict else found >= 0)

            start, end = test(low), test(high)
            if start is None or end is None or start == end:
                continue
            lo, hi = low, high  # test(lo) == start, test(hi) != start
            while hi - lo > 1:
                middle = (lo + hi) // 2
                found = test(middle)
                if found is None:
                    raise Interacts([], frozenset())
                if found == start:
                    lo = middle
                else:
                    hi = middle
            self.points |= {lo, hi}


def monotone(checked: CheckedProtocol, node: ast.Expr, fact: str) -> bool:
    """Is a date expression monotone in `fact` (shifts, differences, earliest and latest of; anything
    that does not read the fact is a constant)?"""
    if fact not in checked.facts_of(node):
        return True
    match node:
        case ast.NameRef() if node.name in checked.definitions:
            return monotone(checked, checked.definitions[node.name].body, fact)
        case ast.NameRef():
            return True
        case ast.Arithmetic() | ast.Negate() | ast.Call() if not isinstance(node, ast.Call) or node.function in (
                "min", "max"):
            # one part reads the fact: a shift, a difference or an extremum of it stays monotone; two parts
            # may pull apart (`d + 1 months - d` is not monotone in d)
            reading = [child for child in ast.children(node) if fact in checked.facts_of(child)]
            return len(reading) == 1 and monotone(checked, reading[0], fact)
        case _:
            return False
