"""Source text and spans: where a piece of user input sits. A span carries its source file, so a
diagnostic can quote the offending line wherever it is reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class SourceFile:
    """A file's text (a protocol, a patient file, a case file), kept to quote lines in diagnostics."""

    path: str
    text: str

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 1 <= line <= len(self.lines) else ""

    def span_text(self, span: Span) -> str | None:
        """The text under a one-line span, or None for a span over several lines."""
        if span.line != span.end_line:
            return None
        return self.line_text(span.line)[span.column - 1: span.end_column - 1]

    def span_at(self, line: int, column: int, width: int = 1) -> Span:
        return Span(self.path, line, column, line, column + max(width, 1), source=self)

    def end_span(self) -> Span:
        lines = self.lines or [""]
        return Span(self.path, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2, source=self)


@dataclass(frozen=True)
class Span:
    """A 1-based, end-exclusive region of one source file."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    # the file's text, to quote it; not part of a span's identity, and not written to the parse cache
    source: SourceFile | None = field(default=None, compare=False, repr=False, kw_only=True,
                                      metadata={"cached": False})

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def text(self) -> str | None:
        """The text under the span, when it is on one line and its source is known."""
        return self.source.span_text(self) if self.source is not None else None
