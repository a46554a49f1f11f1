"""Check a parsed protocol: names, types, units, subgroup guards, bindings, duplicates, nesting.
Reports every error, sorted; the result, a CheckedProtocol, is what later stages require.

The jobs live apart: declarations.py (header, facts, definitions, criteria, statements),
expressions.py (types and units of expressions), guards.py (the subgroup rule), bindings.py (FHIR),
nesting.py (the depth limit). This module runs them in order.
"""

from __future__ import annotations

from types import MappingProxyType

from eligib.language import ast
from eligib.language.bindings import check_bindings
from eligib.language.check_state import CheckState
from eligib.language.checked import CheckedProtocol
from eligib.language.declarations import (
    check_header,
    declare_criteria,
    declare_definitions,
    declare_facts,
    declare_statements,
    declare_value_sets,
    report_unused,
)
from eligib.language.diagnostics import DiagnosticError, Severity
from eligib.language.expressions import ExpressionTyper
from eligib.language.guards import check_guards
from eligib.language.imports import with_imports
from eligib.language.nesting import check_depth
from eligib.language.source import SourceFile
from eligib.language.timepoints import check_timepoints


def check(protocol: ast.Protocol, source: SourceFile) -> CheckedProtocol:
    """Check a parsed protocol; raise DiagnosticError listing every error (warnings ride along)."""
    state = CheckState(protocol, source)
    check_header(state)
    declare_facts(state)
    declare_definitions(state)
    declare_value_sets(state)
    if check_depth(state):
        _check_expressions(state)
        check_bindings(state)
        check_guards(state)
        report_unused(state)
    diagnostics = sorted(state.diagnostics, key=lambda d: d.sort_key())
    if any(d.severity == Severity.ERROR for d in diagnostics):
        raise DiagnosticError(diagnostics)
    checked = CheckedProtocol(protocol, source, MappingProxyType(state.facts), MappingProxyType(state.definitions),
                           MappingProxyType(state.criteria), MappingProxyType(state.assertions),
                           MappingProxyType(state.assumptions), MappingProxyType(state.bindings),
                           MappingProxyType(state.types),
                           tuple(d for d in diagnostics if d.severity == Severity.WARNING),
                           MappingProxyType(state.value_sets), MappingProxyType(state.tables),
                           MappingProxyType(state.field_refs))
    timing = check_timepoints(protocol, checked.facts, checked.criterion_facts)
    if timing:
        raise DiagnosticError(sorted([*diagnostics, *timing], key=lambda d: d.sort_key()))
    return checked


def _check_expressions(state: CheckState) -> None:
    typer = ExpressionTyper(state)
    for fact in state.protocol.facts:
        if fact.guard is not None:
            typer.expect_bool(fact.guard, f"the condition of fact `{fact.name}`")
    for name in state.definitions:
        typer.definition_type(name)
    for criterion in declare_criteria(state):
        if criterion.guard is not None:
            typer.expect_bool(criterion.guard, f"the condition of criterion `{criterion.id}`")
        typer.expect_bool(criterion.body, f"criterion `{criterion.id}`")
    for word, statement in declare_statements(state):
        typer.expect_bool(statement.body, f"{word} `{statement.id}`")


def load(path: str, cache: bool = False) -> CheckedProtocol:
    """Parse and check a protocol file; `cache` reads and writes the parsed-protocol cache (loader.py)."""
    from eligib.language.loader import load_protocol

    protocol, source = load_protocol(path, cache)
    return check(with_imports(protocol, source), source)


def load_text(text: str, path: str = "<protocol>") -> CheckedProtocol:
    from eligib.language.parser import parse

    source = SourceFile(path, text)
    return check(with_imports(parse(text, path, source), source), source)
