"""Read user input files: bounded in size, UTF-8 (a leading byte-order mark is dropped), errors located.

Every input (protocol, patient file, case file, standard input) goes through `read_source`, so each
is read the same way. A file that another file refers to (a case file's `file:`) must be a regular
file: a FIFO or device named from inside data could otherwise hang a run or read a device.
"""

from __future__ import annotations

import os
import stat
import sys

from eligib.language.diagnostics import DiagnosticError, error
from eligib.language.source import SourceFile, Span

UTF8_BOM = b"\xef\xbb\xbf"


def read_source(path: str, what: str, max_bytes: int, regular_only: bool = False) -> SourceFile:
    """The text of `path` (`-` for standard input) as a SourceFile; DiagnosticError when it cannot be read.

    `what` names the input in messages ("patient file"); `regular_only` refuses anything but a
    regular file, without blocking on a FIFO."""
    display = "<stdin>" if path == "-" else path
    data = _read_stdin(max_bytes) if path == "-" else _read_file(path, what, max_bytes, regular_only)
    if len(data) > max_bytes:
        raise DiagnosticError([error("too-large", f"{what} `{display}` is larger than {max_bytes:,} bytes",
                                     help="check that this is the right file; see docs/limits.md")])
    data = data.removeprefix(UTF8_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiagnosticError([error("encoding", f"{what} `{display}` is not UTF-8 text (byte {exc.start})",
                                     _byte_span(display, data, exc.start), "not UTF-8",
                                     help="save the file as UTF-8")]) from None
    return SourceFile(display, text)


def _byte_span(display: str, data: bytes, offset: int) -> Span:
    """Where the first byte that is not UTF-8 is, as line and column of the text a reader's editor shows."""
    readable = SourceFile(display, data.decode("utf-8", errors="replace"))
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return readable.span_at(data.count(b"\n", 0, offset) + 1, column)


def _read_stdin(max_bytes: int) -> bytes:
    stream = getattr(sys.stdin, "buffer", None)
    try:
        if stream is None:
            raise OSError("standard input is closed")
        data: bytes = stream.read(max_bytes + 1)
        return data
    except (OSError, ValueError) as exc:  # ValueError: reading a closed stream
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "standard input is closed"
        raise DiagnosticError([error("io", f"cannot read standard input: {reason}",
                                     help="pipe the file in, or give its path instead of `-`")]) from None


def _read_file(path: str, what: str, max_bytes: int, regular_only: bool) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | (os.O_NONBLOCK if regular_only else 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        raise DiagnosticError([error("io", f"cannot read {what} `{path}`: {exc.strerror or exc}")]) from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise DiagnosticError([error("io", f"cannot read {what} `{path}`: it is a folder")])
        if regular_only and not stat.S_ISREG(mode):
            raise DiagnosticError([error("io", f"cannot read {what} `{path}`: not a regular file",
                                         help="refer to a plain file")])
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise DiagnosticError([error("io", f"cannot read {what} `{path}`: {exc.strerror or exc}")]) from None
    finally:
        os.close(descriptor)
