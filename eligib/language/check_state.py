"""What the checker's jobs share while checking one protocol: the declarations found so far, the
types given to nodes, what is used, and every diagnostic reported."""

from __future__ import annotations

from dataclasses import dataclass, field

from eligib.language import ast
from eligib.language.checked import FactInfo
from eligib.language.diagnostics import Diagnostic
from eligib.language.source import SourceFile
from eligib.values.types import ValueType


@dataclass
class CheckState:
    protocol: ast.Protocol
    source: SourceFile
    diagnostics: list[Diagnostic] = field(default_factory=list)
    facts: dict[str, FactInfo] = field(default_factory=dict)
    definitions: dict[str, ast.Definition] = field(default_factory=dict)
    criteria: dict[str, ast.Criterion] = field(default_factory=dict)
    assertions: dict[str, ast.Assertion] = field(default_factory=dict)
    assumptions: dict[str, ast.Assumption] = field(default_factory=dict)
    bindings: dict[str, ast.Binding] = field(default_factory=dict)
    types: dict[int, ValueType] = field(default_factory=dict)  # node id -> type
    used_facts: set[str] = field(default_factory=set)
    used_definitions: set[str] = field(default_factory=set)
    value_sets: dict[str, ast.ValueSet] = field(default_factory=dict)
    tables: dict[str, ast.Table] = field(default_factory=dict)
    field_refs: dict[int, str] = field(default_factory=dict)  # node id of a name read as a history field -> field
    used_value_sets: set[str] = field(default_factory=set)
    used_tables: set[str] = field(default_factory=set)

    def report(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def text(self, expr: ast.Expr, default: str = "its condition") -> str:
        """An expression as written (for messages)."""
        written = expr.span.text if expr.span is not None else None
        return written if written is not None else default
