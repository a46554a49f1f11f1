"""Diagnostics: every error a user can cause, with its location, one renderer, did-you-mean."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from eligib.limits import MAX_DIAGNOSTICS, MAX_QUOTED_LINE
from eligib.language.source import SourceFile, Span


@dataclass(frozen=True)
class Diagnostic:
    """One finding about user input. `code` is a stable kebab-case name documented in docs/errors.md."""

    severity: str  # "error" | "warning"
    code: str
    message: str
    span: Span | None = None
    label: str = ""
    help: str = ""

    def sort_key(self) -> tuple:
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.file, self.span.line, self.span.column, self.code)


@dataclass
class DiagnosticError(Exception):
    """Raised by a stage when user input is wrong; carries every error it found (up to a limit:
    `omitted` counts the errors past it, found but not described)."""

    diagnostics: list[Diagnostic]
    sources: Mapping[str, SourceFile] = field(default_factory=dict)
    omitted: int = 0

    def __str__(self) -> str:
        return render_all(self.diagnostics, self.sources, self.omitted)


def error(code: str, message: str, span: Span | None = None, label: str = "", help: str = "") -> Diagnostic:
    return Diagnostic("error", code, message, span, label, help)


def warning(code: str, message: str, span: Span | None = None, label: str = "", help: str = "") -> Diagnostic:
    return Diagnostic("warning", code, message, span, label, help)


def suggest(name: str, candidates: Iterable[str]) -> str:
    """A did-you-mean hint naming the closest candidate, or "" when none is close."""
    pool = list(candidates)
    matches = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        if name.lower() in lowered:
            matches = [lowered[name.lower()]]
    return f"did you mean `{matches[0]}`?" if matches else ""


def sorted_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=Diagnostic.sort_key)


def render(diagnostic: Diagnostic, sources: Mapping[str, SourceFile]) -> str:
    """Render in the rustc/Cedar style: header, location, quoted line, caret, help."""
    lines = [f"{diagnostic.severity}[{diagnostic.code}]: {diagnostic.message}"]
    span = diagnostic.span
    if span is not None:
        lines.append(f" --> {span}")
        source = sources.get(span.file)
        quoted = source.line_text(span.line) if source else ""
        if source is not None:
            gutter = " " * len(str(span.line))
            width = (span.end_column - span.column) if span.end_line == span.line else len(quoted) - span.column + 1
            quoted, column, width = _clip_line(quoted, span.column, max(width, 1))
            caret = "^" * width
            pointer = " " * (column - 1) + caret + (f" {diagnostic.label}" if diagnostic.label else "")
            lines += [f"{gutter} |", f"{span.line} | {quoted}", f"{gutter} | {pointer}".rstrip()]
            if diagnostic.help:
                lines.append(f"{gutter} |")
                lines.append(f"{gutter} = help: {diagnostic.help}")
            return "\n".join(lines)
    if diagnostic.help:
        lines.append(f"  = help: {diagnostic.help}")
    return "\n".join(lines)


def _clip_line(line: str, column: int, width: int) -> tuple[str, int, int]:
    """At most MAX_QUOTED_LINE characters of a long line around the span: (text, new column, new width)."""
    if len(line) <= MAX_QUOTED_LINE:
        return line, column, width
    width = min(width, MAX_QUOTED_LINE // 2)
    start = max(0, min(column - 1 - MAX_QUOTED_LINE // 4, len(line) - MAX_QUOTED_LINE))
    end = start + MAX_QUOTED_LINE
    prefix, suffix = ("..." if start > 0 else ""), ("..." if end < len(line) else "")
    return prefix + line[start:end] + suffix, column - start + len(prefix), width


def render_all(diagnostics: Iterable[Diagnostic], sources: Mapping[str, SourceFile], omitted: int = 0) -> str:
    ordered = sorted_diagnostics(diagnostics)
    if len(ordered) > MAX_DIAGNOSTICS:
        omitted += sum(1 for d in ordered[MAX_DIAGNOSTICS:] if d.severity == "error")
        ordered = ordered[:MAX_DIAGNOSTICS]
    body = "\n\n".join(render(d, sources) for d in ordered)
    if omitted:
        body += f"\n\n... and {omitted} more error{'s' if omitted != 1 else ''}, not shown"
    errors = sum(1 for d in ordered if d.severity == "error") + omitted
    warnings = len(ordered) - errors
    summary = []
    if errors:
        summary.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        summary.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return body + (f"\n\n{', '.join(summary)}" if summary else "")
