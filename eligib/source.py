"""Source text and spans: where a piece of user input sits, for diagnostics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A 1-based, end-exclusive region of one source file."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class SourceFile:
    """A file's text, kept so that diagnostics can quote the offending line."""

    path: str
    text: str

    def line_text(self, line: int) -> str:
        lines = self.text.splitlines()
        return lines[line - 1] if 1 <= line <= len(lines) else ""

    def span_at(self, line: int, column: int, width: int = 1) -> Span:
        return Span(self.path, line, column, line, column + max(width, 1))

    def end_span(self) -> Span:
        lines = self.text.splitlines() or [""]
        return Span(self.path, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
