"""FHIR binding checks: each binding names a declared fact once, and its source gives that fact's kind of value."""

from __future__ import annotations

from eligib.language import ast
from eligib.language.check_state import CheckState
from eligib.language.checked import CALENDAR_CODES, FactInfo
from eligib.language.diagnostics import error, suggest
from eligib.values.types import BoolType, DateType, EnumType, NumType
from eligib.values.units import DURATION, canonical_code

Source, Part = ast.BindingSource, ast.BindingPart


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
        problem = binding_problem(binding, info)
        if problem:
            state.report(error("bad-binding", f"binding for `{binding.fact}`: {problem}", binding.span, "this binding"))


def binding_problem(binding: ast.Binding, info: FactInfo) -> str:
    """Why a binding cannot give its fact's kind of value, or ""."""
    kind = info.type
    if binding.part == Part.DATE and not isinstance(kind, DateType):
        return f"a `date` source needs a date fact, but `{info.name}` is {kind}"
    if binding.part == Part.EXISTS and not isinstance(kind, BoolType):
        return f"an `exists` source needs a boolean fact, but `{info.name}` is {kind}"
    if binding.part in (Part.REFERENCE_HIGH, Part.REFERENCE_LOW) and not (isinstance(kind, NumType) and kind.unit):
        return f"a reference limit needs a quantity fact, but `{info.name}` is {kind}"
    if binding.source == Source.AGE and not (isinstance(kind, NumType) and kind.kind == DURATION):
        return f"`age at` needs a fact in years, but `{info.name}` is {kind}"
    if binding.source == Source.GENDER and not isinstance(kind, EnumType):
        return f"`gender` needs an enumeration fact, but `{info.name}` is {kind}"
    if binding.part in (Part.VALUE, Part.REFERENCE_HIGH, Part.REFERENCE_LOW) and binding.source in (
            Source.PROCEDURE, Source.IMMUNIZATION, Source.CONDITION):
        return f"a {binding.source} gives a `date` or `exists`, not a value"
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
