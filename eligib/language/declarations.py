"""Declaration checks: the header, facts (types, units, ranges, conversions), definitions, criteria,
assertions and assumptions; duplicates and unused declarations. Expressions are typed elsewhere."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import assert_never

from eligib.language import ast
from eligib.language.check_state import CheckState
from eligib.language.checked import FactInfo
from eligib.language.diagnostics import Diagnostic, error, suggest, warning
from eligib.language.source import Span
from eligib.limits import DEFAULT_HISTORY_ITEMS, MAX_HISTORY_ITEMS
from eligib.values.calendar import DAY_SECONDS
from eligib.values.types import BOOL, DATE, DATETIME, DateTimeType, DateType, EnumType, ListType, NumType, ValueType
from eligib.values.units import PLAIN, Kind, UnitError, dimension_name, parse_unit

HEADER_KEYS = ("title", "version", "registry")
UNIT_HELP = "use a UCUM code such as U/L, g/L, umol/L, mL/min, %, or years"


def check_header(state: CheckState) -> None:
    header = state.protocol.header
    seen: set[str] = set()
    for item in header.items:
        if item.key not in HEADER_KEYS:
            state.report(error("unknown-header-field", f"unknown header field `{item.key}`", item.span,
                               "not a header field", help=suggest(item.key, HEADER_KEYS)
                               or f"header fields are {', '.join(HEADER_KEYS)}"))
        elif item.key in seen:
            state.report(error("duplicate-header-field", f"header field `{item.key}` is given twice", item.span,
                               "second definition"))
        seen.add(item.key)
    for required in ("title", "version"):
        if required not in seen:
            state.report(error("missing-header-field", f"the protocol header has no `{required}`", header.span,
                               "in this header", help=f'add `{required}: "..."`'))


def declare_facts(state: CheckState) -> None:
    for fact in state.protocol.facts:
        if fact.name in state.facts:
            state.report(error("duplicate-fact", f"fact `{fact.name}` is declared twice", fact.span,
                               "declared again here",
                               help=f"the first declaration is at {state.facts[fact.name].decl.span}"))
            continue
        state.facts[fact.name] = _history_info(state, fact) if fact.type.kind == ast.FactKind.LIST \
            else _fact_info(state, fact, fact.name)


def _fact_info(state: CheckState, fact: ast.FactDecl, enum_owner: str) -> FactInfo:
    """A fact, or a history's field (`enum_owner` names a field's enumeration `therapies.agent`)."""
    fact_type = _fact_type(state, fact, enum_owner)
    conversions = _conversions(state, fact, fact_type)
    low, high = _bound(state, fact, fact.low, fact_type), _bound(state, fact, fact.high, fact_type)
    if low is not None and high is not None and low > high:
        state.report(error("empty-range", f"the range of `{fact.name}` is empty",
                           fact.low.span if fact.low else fact.span, "lower bound is above the upper bound",
                           help="write `from LOW to HIGH`"))
    return FactInfo(fact, fact_type, low, high, conversions)


def _history_info(state: CheckState, history: ast.FactDecl) -> FactInfo:
    """A history: its fields (each like a fact, but no subgroup and no nested history), bound and order."""
    fields: dict[str, FactInfo] = {}
    for decl in history.fields:
        if decl.name in fields:
            state.report(error("duplicate-field", f"history `{history.name}` has two fields named `{decl.name}`",
                               decl.span, "declared again here"))
        elif decl.type.kind == ast.FactKind.LIST:
            state.report(error("nested-history", f"field `{decl.name}` of `{history.name}` is itself a history",
                               decl.span, "a history inside a history",
                               help="declare it as a history of its own and relate the two by a date or code"))
        elif decl.guard is not None:
            state.report(error("guarded-field", f"field `{decl.name}` of `{history.name}` has an `only if` condition",
                               decl.span, "fields have no subgroup condition",
                               help="declare the field `or none` and test it in the query's `where`"))
        else:
            fields[decl.name] = _fact_info(state, decl, f"{history.name}.{decl.name}")
    bound = history.max_items if history.max_items is not None else DEFAULT_HISTORY_ITEMS
    if not 1 <= bound <= MAX_HISTORY_ITEMS:
        state.report(error("bad-count", f"`at most {bound} items` must be between 1 and {MAX_HISTORY_ITEMS}",
                           history.span, "declared here", help="see docs/limits.md"))
        bound = MAX_HISTORY_ITEMS
    order = history.order
    if order is not None and order in fields and not isinstance(fields[order].type, (DateType, DateTimeType, NumType)):
        state.report(error("type-mismatch", f"history `{history.name}` is ordered by `{order}`, which is "
                           f"{fields[order].type}", history.span, "needs a date or a number field",
                           help="order a history by a date such as its start"))
    elif order is not None and order not in fields:
        state.report(error("unknown-field", f"history `{history.name}` has no field `{order}`", history.span,
                           "in `ordered by`", help=suggest(order, fields) or f"fields: {', '.join(fields)}"))
        order = None
    return FactInfo(history, ListType(history.name, tuple(fields.values()), bound, order), None, None)


def declare_value_sets(state: CheckState) -> None:
    """Value sets and tables: names unique among all declared names, members and keys listed once."""
    for value_set in state.protocol.value_sets:
        if _new_name(state, value_set.name, value_set.span, "value set"):
            state.value_sets[value_set.name] = value_set
        _listed_once(state, value_set.members, value_set.span, f"value set `{value_set.name}`")
    for table in state.protocol.tables:
        if _new_name(state, table.name, table.span, "table"):
            state.tables[table.name] = table
        _listed_once(state, [row.key for row in table.rows if not row.band], table.span, f"table `{table.name}`")


def _new_name(state: CheckState, name: str, span: Span | None, what: str) -> bool:
    taken = [kind for kind, names in (("fact", state.facts), ("definition", state.definitions),
                                      ("value set", state.value_sets), ("table", state.tables)) if name in names]
    if taken:
        state.report(error("duplicate-name", f"`{name}` is both a {taken[0]} and a {what}", span,
                           "declared again here", help="rename one of them"))
    return not taken


def _listed_once(state: CheckState, names: tuple[str, ...] | list[str], span: Span | None, where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            state.report(error("duplicate-enum-value", f"`{name}` is listed twice in {where}", span))
        seen.add(name)


def _fact_type(state: CheckState, fact: ast.FactDecl, enum_owner: str) -> ValueType:
    declared = fact.type
    match declared.kind:
        case ast.FactKind.BOOLEAN:
            return BOOL
        case ast.FactKind.DATE:
            return DATE
        case ast.FactKind.DATETIME:
            return DATETIME
        case ast.FactKind.ENUM:
            seen: set[str] = set()
            for value in declared.values:
                if value in seen:
                    state.report(error("duplicate-enum-value", f"value `{value}` is listed twice for `{fact.name}`",
                                       declared.span))
                seen.add(value)
            return EnumType(enum_owner, tuple(dict.fromkeys(declared.values)), declared.ordered)
        case ast.FactKind.INTEGER | ast.FactKind.DECIMAL:
            unit_kind = unit_kind_of(state, declared.unit, declared.span) if declared.unit else PLAIN
            return NumType(unit_kind, declared.unit, integer=declared.kind == ast.FactKind.INTEGER)
        case ast.FactKind.LIST:
            raise AssertionError("histories are declared by _history_info")
        case _:
            assert_never(declared.kind)


def unit_kind_of(state: CheckState, unit: str, span: Span | None) -> Kind:
    try:
        return parse_unit(unit).kind
    except UnitError as exc:
        state.report(error("unknown-unit", f"unknown unit `{unit}`", span, "not a unit", help=f"{exc}; {UNIT_HELP}"))
        return PLAIN


def _bound(state: CheckState, fact: ast.FactDecl, bound: ast.Bound | None,
           fact_type: ValueType) -> Fraction | int | None:
    if bound is None:
        return None
    if isinstance(fact_type, DateType):
        if isinstance(bound.value, dt.date):
            return bound.value.toordinal()
        state.report(error("type-mismatch", f"the range of date `{fact.name}` needs dates", bound.span, "not a date",
                           help="write dates as YYYY-MM-DD"))
        return None
    if isinstance(fact_type, DateTimeType):
        if isinstance(bound.value, dt.date):  # a whole day: from its first second, to its last
            first = bound.value.toordinal() * DAY_SECONDS
            return first if bound is fact.low else first + DAY_SECONDS - 1
        state.report(error("type-mismatch", f"the range of date-time `{fact.name}` needs dates", bound.span,
                           "not a date", help="write dates as YYYY-MM-DD; the range covers whole days (UTC)"))
        return None
    if not isinstance(fact_type, NumType) or not isinstance(bound.value, Fraction):
        state.report(error("type-mismatch", f"`{fact.name}` is {fact_type}; it cannot have a numeric range",
                           bound.span, "range not allowed here"))
        return None
    if (bound.unit is None) != (fact_type.unit is None):
        state.report(unit_presence_error(bound.text, fact_type, bound.span))
        return None
    if bound.unit is None:
        return bound.value
    try:
        unit = parse_unit(bound.unit)
    except UnitError:
        state.report(error("unknown-unit", f"unknown unit `{bound.unit}`", bound.span, "not a unit"))
        return None
    if unit.kind != fact_type.kind:
        state.report(error("unit-mismatch", f"`{bound.text}` cannot bound `{fact.name}`, which is {fact_type}",
                           bound.span, "incompatible unit", help=f"give the bound in `{fact_type.unit}`"))
        return None
    return bound.value * unit.factor


def _conversions(state: CheckState, fact: ast.FactDecl,
                 fact_type: ValueType) -> dict[Kind, tuple[Fraction, Fraction]]:
    """`where 1 mg/dL = 88.4 umol/L`: one side in the fact's kind of unit, the other in another kind;
    with `+ OFFSET` (in the fact's kind), the right side is the fact's and the mapping is linear."""
    found: dict[Kind, tuple[Fraction, Fraction]] = {}
    for conversion in fact.conversions:
        units = [conversion.left.unit, conversion.right.unit]
        if not isinstance(fact_type, NumType) or fact_type.unit is None or None in units:
            state.report(error("bad-conversion", "a conversion needs a quantity fact and units on both sides",
                               conversion.span, "not a unit conversion",
                               help="write e.g. `where 1 mg/dL = 88.4 umol/L`"))
            continue
        try:
            kinds = [parse_unit(u).kind for u in units if u is not None]
        except UnitError as exc:
            state.report(error("unknown-unit", f"unknown unit in conversion: {exc}", conversion.span))
            continue
        if fact_type.kind not in kinds or kinds[0] == kinds[1] or 0 in (conversion.left.value, conversion.right.value):
            state.report(error("bad-conversion", f"this conversion does not relate `{fact_type.unit}` to another kind "
                               "of unit", conversion.span, "not a conversion for this fact",
                               help=f"one side in a unit like `{fact_type.unit}`, the other in the unit to accept"))
            continue
        sides = [(conversion.left, kinds[0]), (conversion.right, kinds[1])]
        (own, _), (other, other_kind) = sorted(sides, key=lambda side: side[1] != fact_type.kind)
        if other_kind in found:
            state.report(error("duplicate-option", f"fact `{fact.name}` has two conversions for "
                               f"{dimension_name(other_kind)}", conversion.span, "second conversion", help="keep one"))
            continue
        offset = _conversion_offset(state, conversion, fact_type, own)
        if offset is None:
            continue
        found[other_kind] = ((own.value * parse_unit(own.unit or "").factor) /
                             (other.value * parse_unit(other.unit or "").factor), offset)
    return found


def _conversion_offset(state: CheckState, conversion: ast.Conversion, fact_type: NumType,
                       own: ast.QuantityLiteral) -> Fraction | None:
    """The canonical offset of a linear conversion (0 without one); None after an error."""
    offset = conversion.offset
    if offset is None:
        return Fraction(0)
    try:
        offset_kind = parse_unit(offset.unit).kind if offset.unit else None
    except UnitError as exc:
        state.report(error("unknown-unit", f"unknown unit in conversion: {exc}", offset.span))
        return None
    if own is not conversion.right or offset_kind != fact_type.kind:
        state.report(error("bad-conversion", "in a conversion with an offset, the right side and the offset are in "
                           f"the fact's kind of unit (`{fact_type.unit}`)", conversion.span,
                           "not a linear conversion for this fact",
                           help=f"write `where 1 OTHER_UNIT = SLOPE {fact_type.unit} + OFFSET {fact_type.unit}`"))
        return None
    return offset.value * parse_unit(offset.unit or "").factor


def unit_presence_error(text: str, fact_type: NumType, span: Span | None) -> Diagnostic:
    if fact_type.unit is None:
        return error("unit-mismatch", f"`{text}` has a unit, but the fact is a plain number", span,
                     "unit not expected", help="write the bound without a unit")
    return error("unit-mismatch", f"`{text}` has no unit, but the fact is {fact_type}", span,
                 "needs a unit", help=f"write the unit, e.g. `{text} {fact_type.unit}`")


def declare_definitions(state: CheckState) -> None:
    for definition in state.protocol.definitions:
        if definition.name in state.definitions:
            state.report(error("duplicate-definition", f"`{definition.name}` is defined twice", definition.span,
                               "defined again here"))
        elif definition.name in state.facts:
            state.report(error("duplicate-name", f"`{definition.name}` is both a fact and a definition",
                               definition.span, "already declared as a fact", help="rename one of them"))
        else:
            state.definitions[definition.name] = definition


def declare_criteria(state: CheckState) -> list[ast.Criterion]:
    """Register each criterion by id; returns every criterion (duplicates too: their bodies are typed)."""
    for criterion in state.protocol.criteria:
        if criterion.id in state.criteria:
            state.report(error("duplicate-criterion", f"criterion id `{criterion.id}` is used twice", criterion.span,
                               "used again here",
                               help=f"ids must be unique; the first is at {state.criteria[criterion.id].span}"))
            continue
        if not criterion.record:
            state.report(warning("no-record-text", f"criterion `{criterion.id}` has no `record:` wording",
                                 criterion.span, "no wording", help="quote the registry record's own words"))
        state.criteria[criterion.id] = criterion
    return list(state.protocol.criteria)


def declare_statements(state: CheckState) -> list[tuple[str, ast.Assertion | ast.Assumption]]:
    """Assertions (proved for eligible patients) and assumptions (true of every patient); returns those
    registered, each with its word ("assertion", "assumption")."""
    registered: list[tuple[str, ast.Assertion | ast.Assumption]] = []
    for assertion in state.protocol.assertions:
        if _unique(state, "assertion", assertion, state.assertions):
            state.assertions[assertion.id] = assertion
            registered.append(("assertion", assertion))
    for assumption in state.protocol.assumptions:
        if _unique(state, "assumption", assumption, state.assumptions):
            state.assumptions[assumption.id] = assumption
            registered.append(("assumption", assumption))
    return registered


def _unique(state: CheckState, word: str, statement: ast.Assertion | ast.Assumption,
            table: dict[str, ast.Assertion] | dict[str, ast.Assumption]) -> bool:
    if statement.id not in table:
        return True
    state.report(error(f"duplicate-{word}", f"{word} id `{statement.id}` is used twice", statement.span,
                       "used again here"))
    return False


def report_unused(state: CheckState) -> None:
    for name, info in state.facts.items():
        if name not in state.used_facts:
            state.report(warning("unused-fact", f"fact `{name}` is declared but never used", info.decl.span,
                                 "never used", help="remove it, or use it in a criterion"))
    for name, definition in state.definitions.items():
        if name not in state.used_definitions:
            state.report(warning("unused-definition", f"definition `{name}` is never used", definition.span,
                                 "never used"))
    for kind, declared, used in (("value set", state.value_sets, state.used_value_sets),
                                 ("table", state.tables, state.used_tables)):
        for name, node in declared.items():
            if name not in used:
                state.report(warning(f"unused-{kind.replace(' ', '-')}", f"{kind} `{name}` is never used", node.span,
                                     "never used"))
