"""The protocol AST, part two: declarations (facts and histories, value sets, tables, definitions,
criteria, assertions, assumptions, FHIR bindings) and the protocol. Read them as `ast.NAME`."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from eligib.language.ast import (
    Absent,
    BindingPart,
    BindingSource,
    Change,
    CriterionKind,
    Expr,
    FactKind,
    FieldPart,
    Node,
    QuantityLiteral,
)
from eligib.language.nodes import node


@node
class MetaItem(Node):
    """`title: "CD7 CAR-T ..."`"""

    key: str
    value: str


@node
class Header(Node):
    """`protocol cd7_car_t:` followed by title, version, registry."""

    name: str
    items: tuple[MetaItem, ...]

    def get(self, key: str) -> str | None:
        return next((item.value for item in self.items if item.key == key), None)


@node
class FactType(Node):
    """`boolean`, `integer`, `decimal U/L`, `date`, `one of (female, male)`."""

    kind: FactKind
    unit: str | None = None
    values: tuple[str, ...] = ()
    ordered: bool = False  # `one of (i < ii < iii < iv)`: the values in increasing order


@node
class Bound(Node):
    """One end of a declared range: `0`, `100 %`, `1900-01-01`."""

    value: Fraction | dt.date
    unit: str | None
    text: str


@node
class Conversion(Node):
    """`where 1 mg/dL = 88.4 umol/L`: a substance-specific equivalence between two kinds of unit;
    with an offset, a linear one (`where 1 mmol/mol = 0.09148 % + 2.152 %`, HbA1c IFCC to NGSP)."""

    left: QuantityLiteral
    right: QuantityLiteral
    offset: QuantityLiteral | None = None

    @property
    def text(self) -> str:
        return f"{self.left.text} = {self.right.text}" + (f" + {self.offset.text}" if self.offset else "")


@node
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
    fields: tuple[FactDecl, ...] = ()  # a history's item fields
    max_items: int | None = None  # a history's `at most N items`
    order: str | None = None  # a history's `ordered by FIELD`
    assessed: tuple[str, ...] = ()  # `assessed at lymphodepletion`: the time points it is known at
    change: Change | None = None  # `fixed` / `modifiable`: can a new value be sought (None: the type's default)


@node
class ValueSet(Node):
    """`valueset anti_cd38 "Anti-CD38 antibodies", system "http://...rxnorm", version "2026-11": (...)`."""

    name: str
    label: str
    members: tuple[str, ...]
    system: str = ""  # the code system the members come from, and its version, when declared
    version: str = ""


@node
class Import(Node):
    """`import "valuesets/myeloma.elig"`: value sets and tables from a file beside the protocol."""

    path: str


@node
class Library(Node):
    """A value-set file: value sets and tables, for protocols to import."""

    value_sets: tuple[ValueSet, ...]
    tables: tuple[Table, ...]


@node
class TableRow(Node):
    """`daratumumab: 18 days`, or a band of a number: `from 6 years below 11 years: 1.0 mg/dL`."""

    key: str  # "" for a band
    value: QuantityLiteral
    low: QuantityLiteral | None = None  # a band: low <= key < high (no low: below high; no high: from low)
    high: QuantityLiteral | None = None

    @property
    def band(self) -> bool:
        return not self.key


@node
class Table(Node):
    """`table half_life "Elimination half-life": ...`: a value per enumeration value; `half_life(agent)`."""

    name: str
    label: str
    rows: tuple[TableRow, ...]


@node
class Definition(Node):
    """`define relapsed: any of ...`: a named condition reused by criteria."""

    name: str
    body: Expr


@node
class Criterion(Node):
    """`inclusion age "Age 18 to 85":` with the record's wording, an optional guard and a body."""

    kind: CriterionKind
    id: str
    label: str
    record: str
    guard: Expr | None
    body: Expr
    assessed: tuple[str, ...] = ()  # `assessed at screening and infusion`: its time points, in order


@node
class TimePoints(Node):
    """`timepoints: screening, lymphodepletion, infusion`: the study's assessment time points, in order."""

    names: tuple[str, ...]


@node
class Assertion(Node):
    """`assert no_pregnancy "...":` then a condition every eligible patient must satisfy."""

    id: str
    label: str
    body: Expr


@node
class Assumption(Node):
    """`assume hsct_before_screening "...":` then a condition every patient satisfies."""

    id: str
    label: str
    body: Expr


@node
class FieldBinding(Node):
    """`agent: code ("http://www.nlm.nih.gov/research/umls/rxnorm|1789942" = daratumumab)`"""

    field: str
    part: FieldPart
    codes: tuple[tuple[str, str], ...] = ()  # for `code`: (system|code, enumeration value)


@node
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
    fields: tuple[FieldBinding, ...] = ()  # a history's binding (`each`): one item per resource
    complete: bool = False  # a history's binding: the bundle lists every such resource


@node
class Protocol(Node):
    header: Header
    facts: tuple[FactDecl, ...]
    definitions: tuple[Definition, ...]
    criteria: tuple[Criterion, ...]
    assertions: tuple[Assertion, ...] = ()
    bindings: tuple[Binding, ...] = ()
    assumptions: tuple[Assumption, ...] = ()
    value_sets: tuple[ValueSet, ...] = ()
    tables: tuple[Table, ...] = ()
    imports: tuple[Import, ...] = ()
    timepoints: TimePoints | None = None
