"""The protocol AST: plain immutable data. Spans and node ids are kept out of equality, so trees
compare by meaning. Every node the parser builds has its own `nid`: later stages key what they know
about a node (its type, its Z3 term, its value for one patient) by it. Kinds and operators are enums."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import field
from enum import StrEnum
from fractions import Fraction
from typing import Any, assert_never

from eligib.language.nodes import Frozen, node
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
    DATETIME = "datetime"  # an instant: a date with a time of day and a UTC offset
    ENUM = "enum"
    LIST = "list"  # a history: a list of items, each a record of typed fields


class Change(StrEnum):
    """Whether a fact's value can be changed for a patient (a lab repeated, a visit moved) or not (a
    diagnosis, an age): guidance proposes changes of modifiable facts only (docs/guidance.md)."""

    FIXED = "fixed"
    MODIFIABLE = "modifiable"


class QueryKind(StrEnum):
    """What a query asks of a history's matching items (docs/language.md, Histories)."""

    ANY = "any"
    NO = "no"
    EVERY = "every"
    COUNT = "count"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    LATEST = "latest"
    EARLIEST = "earliest"

    @property
    def takes_field(self) -> bool:
        """`min(FIELD of LIST ...)`: the aggregates name the field they read."""
        return self in (QueryKind.MIN, QueryKind.MAX, QueryKind.SUM, QueryKind.LATEST, QueryKind.EARLIEST)


class BindingSource(StrEnum):
    OBSERVATION = "observation"
    PROCEDURE = "procedure"
    IMMUNIZATION = "immunization"
    CONDITION = "condition"
    MEDICATION = "medication"  # MedicationStatement, MedicationAdministration, MedicationRequest
    AGE = "age"
    GENDER = "gender"
    FHIRPATH = "fhirpath"


class BindingPart(StrEnum):
    VALUE = "value"
    DATE = "date"
    EXISTS = "exists"
    REFERENCE_HIGH = "reference_high"
    REFERENCE_LOW = "reference_low"


class FieldPart(StrEnum):
    """What part of a resource a history item's field is read from."""

    DATE = "date"
    START = "start"
    END = "end"
    VALUE = "value"
    CODE = "code"


class Absent(StrEnum):
    FALSE = "false"
    NONE = "none"


_node_ids = itertools.count()


@node
class Node(Frozen):
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)
    # a process-wide unique id, given at construction; later stages key what they know of a node by it
    nid: int = field(default_factory=lambda: next(_node_ids), init=False, compare=False, repr=False)



# ---------------------------------------------------------------- expressions


@node
class BoolLiteral(Node):
    """`true`, `false`"""

    value: bool


@node
class QuantityLiteral(Node):
    """`60 g/L`, `3`, `6 months`: an exact decimal with an optional unit as written."""

    value: Fraction
    unit: str | None
    text: str


@node
class DateLiteral(Node):
    """`2026-11-20`"""

    value: dt.date


@node
class NameRef(Node):
    """`lvef`: a fact or a definition."""

    name: str


@node
class Call(Node):
    """`min(3 * tki_half_life, 7 days)`, `max(a, b)`: the smallest or largest of like values."""

    function: str
    args: tuple[Expr, ...]


@node
class Not(Node):
    """`not cns_leukemia`"""

    operand: Expr


@node
class And(Node):
    """`hbcab_positive and hbv_dna_abnormal`"""

    operands: tuple[Expr, ...]


@node
class Or(Node):
    """`creatinine <= 1.5 * creatinine_uln or creatinine_clearance >= 60 mL/min`"""

    operands: tuple[Expr, ...]


@node
class Compare(Node):
    """`18 years <= age <= 85 years`: a chain, true when every link holds."""

    operands: tuple[Expr, ...]
    operators: tuple[Comparator, ...]


@node
class Arithmetic(Node):
    """`3 * alt_uln`, `a + b - c`: evaluated left to right."""

    operands: tuple[Expr, ...]
    operators: tuple[Operator, ...]


@node
class Negate(Node):
    """`-x`"""

    operand: Expr


@node
class Conditional(Node):
    """`alt <= 5 * alt_uln if alt_disease_related else alt <= 3 * alt_uln`"""

    condition: Expr
    then: Expr
    otherwise: Expr


@node
class Implies(Node):
    """`diagnosis is aml implies cd7_flow_percent >= 70 %`: false only when the left holds and the right fails."""

    antecedent: Expr
    consequent: Expr


@node
class IsValue(Node):
    """`sex is female`, `diagnosis is not aml`"""

    subject: Expr
    value: str
    negated: bool = False


@node
class InSet(Node):
    """`diagnosis in (t_all, t_lbl, etp_all)`"""

    subject: Expr
    values: tuple[str, ...]
    negated: bool = False


@node
class IsNone(Node):
    """`cd7_ihc_percent is none`: the fact is known to have no value (never done, never happened)."""

    subject: Expr
    negated: bool = False


@node
class Within(Node):
    """`last_hsct_date within 6 months before screening_date` (anchor - 6 months <= date <= anchor)."""

    subject: Expr
    amount: QuantityLiteral
    direction: Direction
    anchor: Expr


@node
class InValueSet(Node):
    """`agent in anti_cd38`: membership in a named value set."""

    subject: Expr
    value_set: str
    negated: bool = False


@node
class IsRanked(Node):
    """`best_response is at least pr`, `nyha_class is at most ii`: a place in an ordered enumeration."""

    subject: Expr
    value: str
    at_most: bool = False

    def among(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """The declared values (in order) that satisfy the test."""
        index = values.index(self.value)
        return values[: index + 1] if self.at_most else values[index:]


@node
class Query(Node):
    """`any(therapies where class is anti_cd38)`, `count(...)`, `latest(best_response of therapies)`:
    a question about the items of a history. Inside `where`, names are the item's fields first."""

    kind: QueryKind
    collection: str
    field: str | None  # the field an aggregate reads
    where: Expr | None


@node
class BlockItem(Node):
    """One alternative of a block; a named one is a path (`relapsed: ...`)."""

    name: str | None
    body: Expr


@node
class Block(Node):
    """`any of`, `all of`, `at least 2 of`, each followed by indented items."""

    kind: BlockKind
    items: tuple[BlockItem, ...]
    count: int = 0  # for `at least N of`


Expr = (
    BoolLiteral | QuantityLiteral | DateLiteral | NameRef | Call | Not | And | Or | Compare | Arithmetic | Negate
    | Conditional | Implies | IsValue | InSet | IsNone | Within | Block | InValueSet | Query | IsRanked
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
        case IsValue() | InSet() | IsNone() | InValueSet() | IsRanked():
            return [node.subject]
        case Query():
            return [] if node.where is None else [node.where]
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


# The declarations (facts, criteria, statements, bindings, the protocol) live in ast_declarations.py, and
# are names of this module too: `ast.Criterion`. Imported last, as they build on the nodes above.
from eligib.language.ast_declarations import (
    Assertion as Assertion,
    Assumption as Assumption,
    Binding as Binding,
    Bound as Bound,
    Conversion as Conversion,
    Criterion as Criterion,
    Definition as Definition,
    FactDecl as FactDecl,
    FactType as FactType,
    FieldBinding as FieldBinding,
    Header as Header,
    Import as Import,
    Library as Library,
    MetaItem as MetaItem,
    Protocol as Protocol,
    Table as Table,
    TableRow as TableRow,
    TimePoints as TimePoints,
    ValueSet as ValueSet,
)
