"""The protocol AST: plain immutable data. Spans and node ids are kept out of equality, so trees
compare by meaning. Every node the parser builds has its own `nid`: later stages key what they know
about a node (its type, its Z3 term, its value for one patient) by it. Kinds and operators are enums."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any, assert_never

from eligib.language.source import Span


class CriterionKind(StrEnum):
    INCLUSION = "inclusion"
    EXCLUSION = "exclusion"


class BlockKind(StrEnum):
    ANY = "any"
    ALL = "all"
    AT_LEAST = "at_least"


class Direction(StrEnum):
    BEFORE = "before"
    AFTER = "after"


class Comparator(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="

    def negated(self) -> Comparator:
        return {Comparator.LT: Comparator.GE, Comparator.LE: Comparator.GT, Comparator.GT: Comparator.LE,
                Comparator.GE: Comparator.LT, Comparator.EQ: Comparator.NE, Comparator.NE: Comparator.EQ}[self]


class Operator(StrEnum):
    ADD = "+"
    SUBTRACT = "-"
    MULTIPLY = "*"
    DIVIDE = "/"

    def apply(self, left: Any, right: Any) -> Any:
        """The operation on exact numbers (Fraction or int) or Z3 terms: one home for what each
        operator means, shared by the checker's constant folding, the evaluator and the compiler.
        Division of two ints is exact (a Fraction), never a float."""
        match self:
            case Operator.ADD:
                return left + right
            case Operator.SUBTRACT:
                return left - right
            case Operator.MULTIPLY:
                return left * right
            case Operator.DIVIDE:
                return Fraction(left) / right if isinstance(left, int) else left / right
            case _:
                assert_never(self)


class FactKind(StrEnum):
    BOOLEAN = "boolean"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    ENUM = "enum"


class BindingSource(StrEnum):
    OBSERVATION = "observation"
    PROCEDURE = "procedure"
    IMMUNIZATION = "immunization"
    CONDITION = "condition"
    AGE = "age"
    GENDER = "gender"
    FHIRPATH = "fhirpath"


class BindingPart(StrEnum):
    VALUE = "value"
    DATE = "date"
    EXISTS = "exists"
    REFERENCE_HIGH = "reference_high"
    REFERENCE_LOW = "reference_low"


class Absent(StrEnum):
    FALSE = "false"
    NONE = "none"


_node_ids = itertools.count()


@dataclass(frozen=True)
class Node:
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)
    # a process-wide unique id, given at construction; later stages key what they know of a node by it
    nid: int = field(default_factory=lambda: next(_node_ids), init=False, compare=False, repr=False)


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class BoolLiteral(Node):
    """`true`, `false`"""

    value: bool


@dataclass(frozen=True)
class QuantityLiteral(Node):
    """`60 g/L`, `3`, `6 months`: an exact decimal with an optional unit as written."""

    value: Fraction
    unit: str | None
    text: str


@dataclass(frozen=True)
class DateLiteral(Node):
    """`2026-11-20`"""

    value: dt.date


@dataclass(frozen=True)
class NameRef(Node):
    """`lvef`: a fact or a definition."""

    name: str


@dataclass(frozen=True)
class Call(Node):
    """`min(3 * tki_half_life, 7 days)`, `max(a, b)`: the smallest or largest of like values."""

    function: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Not(Node):
    """`not cns_leukemia`"""

    operand: Expr


@dataclass(frozen=True)
class And(Node):
    """`hbcab_positive and hbv_dna_abnormal`"""

    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or(Node):
    """`creatinine <= 1.5 * creatinine_uln or creatinine_clearance >= 60 mL/min`"""

    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Compare(Node):
    """`18 years <= age <= 85 years`: a chain, true when every link holds."""

    operands: tuple[Expr, ...]
    operators: tuple[Comparator, ...]


@dataclass(frozen=True)
class Arithmetic(Node):
    """`3 * alt_uln`, `a + b - c`: evaluated left to right."""

    operands: tuple[Expr, ...]
    operators: tuple[Operator, ...]


@dataclass(frozen=True)
class Negate(Node):
    """`-x`"""

    operand: Expr


@dataclass(frozen=True)
class Conditional(Node):
    """`alt <= 5 * alt_uln if alt_disease_related else alt <= 3 * alt_uln`"""

    condition: Expr
    then: Expr
    otherwise: Expr


@dataclass(frozen=True)
class Implies(Node):
    """`diagnosis is aml implies cd7_flow_percent >= 70 %`: false only when the left holds and the right fails."""

    antecedent: Expr
    consequent: Expr


@dataclass(frozen=True)
class IsValue(Node):
    """`sex is female`, `diagnosis is not aml`"""

    subject: Expr
    value: str
    negated: bool = False


@dataclass(frozen=True)
class InSet(Node):
    """`diagnosis in (t_all, t_lbl, etp_all)`"""

    subject: Expr
    values: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class IsNone(Node):
    """`cd7_ihc_percent is none`: the fact is known to have no value (never done, never happened)."""

    subject: Expr
    negated: bool = False


@dataclass(frozen=True)
class Within(Node):
    """`last_hsct_date within 6 months before screening_date` (anchor - 6 months <= date <= anchor)."""

    subject: Expr
    amount: QuantityLiteral
    direction: Direction
    anchor: Expr


@dataclass(frozen=True)
class BlockItem(Node):
    """One alternative of a block; a named one is a path (`relapsed: ...`)."""

    name: str | None
    body: Expr


@dataclass(frozen=True)
class Block(Node):
    """`any of`, `all of`, `at least 2 of`, each followed by indented items."""

    kind: BlockKind
    items: tuple[BlockItem, ...]
    count: int = 0  # for `at least N of`


Expr = (
    BoolLiteral | QuantityLiteral | DateLiteral | NameRef | Call | Not | And | Or | Compare | Arithmetic | Negate
    | Conditional | Implies | IsValue | InSet | IsNone | Within | Block
)


def children(node: Expr) -> list[Expr]:
    """The sub-expressions of a node, in source order (a `within`'s amount is a literal of the node)."""
    match node:
        case BoolLiteral() | QuantityLiteral() | DateLiteral() | NameRef():
            return []
        case Not() | Negate():
            return [node.operand]
        case And() | Or() | Compare() | Arithmetic():
            return list(node.operands)
        case Call():
            return list(node.args)
        case Conditional():
            return [node.condition, node.then, node.otherwise]
        case Implies():
            return [node.antecedent, node.consequent]
        case IsValue() | InSet() | IsNone():
            return [node.subject]
        case Within():
            return [node.subject, node.anchor]
        case Block():
            return [item.body for item in node.items]
        case _:
            assert_never(node)


def walk(root: Expr) -> list[Expr]:
    """Every node under `root`, `root` first (iteratively: expressions may be deep)."""
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(reversed(children(node)))
    return found


# --------------------------------------------------------------- declarations


@dataclass(frozen=True)
class MetaItem(Node):
    """`title: "CD7 CAR-T ..."`"""

    key: str
    value: str


@dataclass(frozen=True)
class Header(Node):
    """`protocol cd7_car_t:` followed by title, version, registry."""

    name: str
    items: tuple[MetaItem, ...]

    def get(self, key: str) -> str | None:
        return next((item.value for item in self.items if item.key == key), None)


@dataclass(frozen=True)
class FactType(Node):
    """`boolean`, `integer`, `decimal U/L`, `date`, `one of (female, male)`."""

    kind: FactKind
    unit: str | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bound(Node):
    """One end of a declared range: `0`, `100 %`, `1900-01-01`."""

    value: Fraction | dt.date
    unit: str | None
    text: str


@dataclass(frozen=True)
class Conversion(Node):
    """`where 1 mg/dL = 88.4 umol/L`: a substance-specific equivalence between two kinds of unit."""

    left: QuantityLiteral
    right: QuantityLiteral


@dataclass(frozen=True)
class FactDecl(Node):
    """`lvef: decimal %, from 0 % to 100 %, "Left ventricular ejection fraction"`"""

    name: str
    type: FactType
    low: Bound | None = None
    high: Bound | None = None
    optional: bool = False
    guard: Expr | None = None
    description: str = ""
    conversions: tuple[Conversion, ...] = ()


@dataclass(frozen=True)
class Definition(Node):
    """`define relapsed: any of ...`: a named condition reused by criteria."""

    name: str
    body: Expr


@dataclass(frozen=True)
class Criterion(Node):
    """`inclusion age "Age 18 to 85":` with the record's wording, an optional guard and a body."""

    kind: CriterionKind
    id: str
    label: str
    record: str
    guard: Expr | None
    body: Expr


@dataclass(frozen=True)
class Assertion(Node):
    """`assert no_pregnancy "...":` then a condition every eligible patient must satisfy."""

    id: str
    label: str
    body: Expr


@dataclass(frozen=True)
class Assumption(Node):
    """`assume hsct_before_screening "...":` then a condition every patient satisfies."""

    id: str
    label: str
    body: Expr


@dataclass(frozen=True)
class Binding(Node):
    """`alt: observation "1742-6", before screening_date, within 28 days`: where a fact comes from in FHIR."""

    fact: str
    source: BindingSource
    codes: tuple[str, ...] = ()
    part: BindingPart = BindingPart.VALUE
    expression: str = ""  # for `fhirpath`
    anchor: str | None = None  # `before ANCHOR`, or `age at ANCHOR`
    window: QuantityLiteral | None = None
    absent: Absent | None = None  # what a missing resource means; by default, unknown


@dataclass(frozen=True)
class Protocol(Node):
    header: Header
    facts: tuple[FactDecl, ...]
    definitions: tuple[Definition, ...]
    criteria: tuple[Criterion, ...]
    assertions: tuple[Assertion, ...] = ()
    bindings: tuple[Binding, ...] = ()
    assumptions: tuple[Assumption, ...] = ()
