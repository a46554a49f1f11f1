"""Diagnostics: one model for everything a user is told, and one renderer.

A Diagnostic is a protocol error, a patient-file error, a CLI error or (as a Finding, with its
evidence) a verify finding. Every error a user can cause is raised as an EligibError subclass that
knows its diagnostics and its exit code, so the CLI has one way to report them all.
"""

from __future__ import annotations

import os
from abc import ABCMeta, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from eligib.language.source import Span
from eligib.limits import MAX_DIAGNOSTICS, MAX_QUOTED_LINE
from eligib.values.words import suggest

__all__ = ["Diagnostic", "DiagnosticError", "EligibError", "Finding", "Severity", "error", "render", "render_all",
           "suggest", "warning"]

EXIT_INPUT_ERROR = 2
DEBUG_VARIABLE = "ELIGIB_DEBUG"  # set to 1 to see a traceback for an internal error


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    OK = "ok"  # a property `eligib verify` proved


@dataclass(frozen=True)
class Diagnostic:
    """One finding about user input. `code` is a stable kebab-case name documented in docs/errors.md."""

    severity: Severity
    code: str
    message: str
    span: Span | None = None
    label: str = ""
    help: str = ""

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.file, self.span.line, self.span.column, self.code)


@dataclass(frozen=True)
class Finding(Diagnostic):
    """A verify finding: a diagnostic with its evidence (the criteria involved, a witness patient)."""

    subject: str = ""  # what it is about: a criterion id, a path `criterion.path`, an assertion id, "protocol"
    criteria: tuple[str, ...] = ()
    witness: dict[str, Any] | None = field(default=None, compare=False)
    witness_verdict: str | None = None


class EligibError(Exception, metaclass=ABCMeta):
    """Every error a user can cause. It knows what to tell them and the exit code that says it."""

    exit_code = EXIT_INPUT_ERROR

    @property
    @abstractmethod
    def diagnostics(self) -> list[Diagnostic]:
        """What to tell the user: each subclass says it in its own terms."""

    @property
    def omitted(self) -> int:
        """Errors found beyond those described (see limits.MAX_DIAGNOSTICS)."""
        return 0

    def __str__(self) -> str:
        return render_all(self.diagnostics, self.omitted)


class DiagnosticError(EligibError):
    """Raised by a stage when user input is wrong; carries every error it found (up to a limit:
    `omitted` counts the errors past it, found but not described)."""

    def __init__(self, diagnostics: list[Diagnostic], omitted: int = 0) -> None:
        super().__init__()
        self.found, self.count_omitted = list(diagnostics), omitted

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.found

    @property
    def omitted(self) -> int:
        return self.count_omitted


def error(code: str, message: str, span: Span | None = None, label: str = "", help: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, span, label, help)


def warning(code: str, message: str, span: Span | None = None, label: str = "", help: str = "") -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, span, label, help)


def debugging() -> bool:
    """Whether internal errors show their traceback (`--debug`, or ELIGIB_DEBUG=1)."""
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def sorted_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=Diagnostic.sort_key)


def render(diagnostic: Diagnostic) -> str:
    """Render in the rustc/Cedar style: header, location, quoted line, caret, help."""
    lines = [f"{diagnostic.severity}[{diagnostic.code}]: {diagnostic.message}"]
    span = diagnostic.span
    if span is not None:
        lines.append(f" --> {span}")
        source = span.source
        if source is not None:
            quoted = source.line_text(span.line)
            gutter = " " * len(str(span.line))
            width = (span.end_column - span.column) if span.end_line == span.line else len(quoted) - span.column + 1
            quoted, column, width = _clip_line(quoted, span.column, max(width, 1))
            pointer = " " * (column - 1) + "^" * width + (f" {diagnostic.label}" if diagnostic.label else "")
            lines += [f"{gutter} |", f"{span.line} | {quoted}", f"{gutter} | {pointer}".rstrip()]
            if diagnostic.help:
                lines += [f"{gutter} |", f"{gutter} = help: {diagnostic.help}"]
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


def render_all(diagnostics: Iterable[Diagnostic], omitted: int = 0) -> str:
    """Every diagnostic (the first MAX_DIAGNOSTICS of them), sorted, then a count of errors and warnings."""
    ordered = sorted_diagnostics(diagnostics)
    if len(ordered) > MAX_DIAGNOSTICS:
        omitted += sum(1 for d in ordered[MAX_DIAGNOSTICS:] if d.severity == Severity.ERROR)
        ordered = ordered[:MAX_DIAGNOSTICS]
    body = "\n\n".join(render(d) for d in ordered)
    if omitted:
        body += f"\n\n... and {omitted} more error{'s' if omitted != 1 else ''}, not shown"
    errors = sum(1 for d in ordered if d.severity == Severity.ERROR) + omitted
    warnings = sum(1 for d in ordered if d.severity == Severity.WARNING)
    summary = []
    if errors:
        summary.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        summary.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return body + (f"\n\n{', '.join(summary)}" if summary else "")
