"""FHIR binding checks: each binding names a declared fact once, and its source gives that fact's kind of value."""

from __future__ import annotations

from eligib.language import ast
from eligib.language.check_state import CheckState
from eligib.language.checked import CALENDAR_CODES, FactInfo
from eligib.language.diagnostics import error, suggest
from eligib.values.types import BoolType, DateTimeType, DateType, EnumType, ListType, NumType, ValueType
from eligib.values.units import DURATION, canonical_code

Source, Part, FieldPart = ast.BindingSource, ast.BindingPart, ast.FieldPart


TIME_POINTS = (DateType, DateTimeType)  # what a resource's date fills: a date, or a date-time as written

def check_bindings(state: CheckState) -> None:
    for binding in state.protocol.bindings:
        info = state.facts.get(binding.fact)
        if info is None:
            state.report(error("unknown-fact", f"binding for unknown fact `{binding.fact}`", binding.span,
                               "not declared", help=suggest(binding.fact, state.facts) or "declare it under `facts:`"))
            continue
        if binding.fact in state.bindings:
            state.report(error("duplicate-binding", f"fact `{binding.fact}` is bound twice", binding.span,
                               "bound again here"))
            continue
        state.bindings[binding.fact] = binding
        if binding.anchor:
            state.used_facts.add(binding.anchor)
            anchor = state.facts.get(binding.anchor)
            if anchor is None or not isinstance(anchor.type, DateType):
                dates = [name for name, f in state.facts.items() if isinstance(f.type, DateType)]
                state.report(error("type-mismatch", f"`{binding.anchor}` must be a date fact", binding.span,
                                   "anchor of this binding", help=suggest(binding.anchor, dates)
                                   or f"date facts: {', '.join(dates)}"))
        problem = history_binding_problem(binding, info) if binding.fields or isinstance(info.type, ListType) \
            else binding_problem(binding, info)
        if problem:
            state.report(error("bad-binding", f"binding for `{binding.fact}`: {problem}", binding.span, "this binding"))


def history_binding_problem(binding: ast.Binding, info: FactInfo) -> str:
    """Why a history's binding (`each RESOURCE ...:` with a part per field) cannot fill it, or ""."""
    history = info.type
    if not isinstance(history, ListType):
        return f"`each` fills a history, but `{info.name}` is {history}"
    if not binding.fields:
        return f"`{info.name}` is a history: write `each RESOURCE \"CODE\":` and a part for each field"
    if binding.absent is not None:
        return "a history's binding has no `absent means`: no matching resource is an empty list"
    names = [field.name for field in history.fields]
    seen: set[str] = set()
    for bound in binding.fields:
        if bound.field not in names:
            hint = suggest(bound.field, names) or "fields: " + ", ".join(names)
            return f"`{info.name}` has no field `{bound.field}` ({hint})"
        if bound.field in seen:
            return f"field `{bound.field}` is bound twice"
        seen.add(bound.field)
        problem = _field_part_problem(bound, history.field(bound.field).type)
        if problem:
            return f"field `{bound.field}`: {problem}"
    return ""


def _field_part_problem(bound: ast.FieldBinding, kind: ValueType) -> str:
    if bound.part in (FieldPart.DATE, FieldPart.START, FieldPart.END) and not isinstance(kind, TIME_POINTS):
        return f"`{bound.part}` gives a date, but the field is {kind}"
    if bound.part == FieldPart.CODE:
        if not isinstance(kind, EnumType):
            return f"`code` gives an enumeration value, but the field is {kind}"
        unknown = [value for _, value in bound.codes if value not in kind.values]
        if unknown:
            hint = suggest(unknown[0], kind.values) or ", ".join(kind.values)
            return f"`{unknown[0]}` is not a value of the field ({hint})"
    if bound.part == FieldPart.VALUE and isinstance(kind, (*TIME_POINTS, EnumType)):
        return "`value` gives a number or a boolean; use `date` or `code`"
    return ""


def binding_problem(binding: ast.Binding, info: FactInfo) -> str:
    """Why a binding cannot give its fact's kind of value, or ""."""
    kind = info.type
    if binding.part == Part.DATE and not isinstance(kind, TIME_POINTS):
        return f"a `date` source needs a date or date-time fact, but `{info.name}` is {kind}"
    if binding.part == Part.EXISTS and not isinstance(kind, BoolType):
        return f"an `exists` source needs a boolean fact, but `{info.name}` is {kind}"
    if binding.part in (Part.REFERENCE_HIGH, Part.REFERENCE_LOW) and not (isinstance(kind, NumType) and kind.unit):
        return f"a reference limit needs a quantity fact, but `{info.name}` is {kind}"
    if binding.source == Source.AGE and not (isinstance(kind, NumType) and kind.kind == DURATION):
        return f"`age at` needs a fact in years, but `{info.name}` is {kind}"
    if binding.source == Source.GENDER and not isinstance(kind, EnumType):
        return f"`gender` needs an enumeration fact, but `{info.name}` is {kind}"
    if binding.part in (Part.VALUE, Part.REFERENCE_HIGH, Part.REFERENCE_LOW) and binding.source in (
            Source.PROCEDURE, Source.IMMUNIZATION, Source.CONDITION, Source.MEDICATION):
        return f"a {binding.source} gives a `date` or `exists`, not a value"
    if binding.complete:
        return "`complete` applies to a history's binding (`each ...`)"
    if binding.anchor == binding.fact:
        return "a fact cannot be counted back from itself"
    if binding.window is not None and binding.anchor is None:
        return "`within` needs `before ANCHOR` to count back from"
    if binding.window is not None and canonical_code(binding.window.unit or "") not in CALENDAR_CODES:
        return f"`within {binding.window.text}` is not a calendar duration"
    if binding.absent == ast.Absent.NONE and not info.optional:
        return f"`absent means none` needs `{info.name}` declared `or none`"
    if binding.absent == ast.Absent.FALSE and not isinstance(kind, BoolType):
        return "`absent means false` needs a boolean fact"
    return ""
