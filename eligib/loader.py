"""Read protocol files, through a cache of parsed protocols so a repeated check skips Lark entirely.

The cache is like Python's .pyc files: keyed by a hash of the protocol text, the grammar and eligib's version;
stored as plain JSON data (never pickle, so a cache file cannot run code); any problem reading
or writing it means "parse again". Set ELIGIB_NO_CACHE=1 to bypass it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import tempfile
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from eligib import ast
from eligib.diagnostics import DiagnosticError, error
from eligib.source import SourceFile, Span

MAX_SOURCE_BYTES = 1_000_000

FORMAT = 7
MAX_CACHE_FILES = 256  # oldest entries go first beyond this
_CLASSES = {cls.__name__: cls for cls in vars(ast).values()
            if isinstance(cls, type) and dataclasses.is_dataclass(cls)} | {"Span": Span}


def load_protocol(path: str) -> tuple[ast.Protocol, SourceFile]:
    """Parse a protocol file, or take its parse from the cache when the text is unchanged."""
    text = read_source(path)
    protocol = load(text, path)
    if protocol is None:
        from eligib.parser import parse  # imports Lark: only for a new or changed protocol

        protocol = parse(text, path)
        store(text, path, protocol)
    return protocol, SourceFile(path, text)


def read_source(path: str) -> str:
    """Read a protocol file, turning OS and encoding problems into diagnostics."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise DiagnosticError([error("io", f"cannot read `{path}`: {exc.strerror or exc}")]) from None
    if len(data) > MAX_SOURCE_BYTES:
        raise DiagnosticError([error("too-large", f"`{path}` is larger than {MAX_SOURCE_BYTES} bytes",
                                     help="split the protocol or check that this is the right file")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiagnosticError([error("encoding", f"`{path}` is not UTF-8 text (byte {exc.start})")]) from None


def cache_dir() -> Path | None:
    if os.environ.get("ELIGIB_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eligib"


def grammar_text() -> str:
    """The Lark grammar: packaged as `eligib.grammar`, or beside the package in a source checkout."""
    try:
        return resources.files("eligib.grammar").joinpath("eligib.lark").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        return (Path(__file__).resolve().parent.parent / "grammar" / "eligib.lark").read_text(encoding="utf-8")


def _key(text: str, path: str) -> str:
    from eligib import __version__

    grammar = grammar_text().encode("utf-8")
    digest = hashlib.sha256()
    for part in (str(FORMAT), __version__, path):
        digest.update(part.encode() + b"\0")
    digest.update(grammar + b"\0" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def load(text: str, path: str) -> ast.Protocol | None:
    directory = cache_dir()
    if directory is None:
        return None
    try:
        data = json.loads((directory / f"{_key(text, path)}.json").read_text(encoding="utf-8"))
        node = _decode(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return node if isinstance(node, ast.Protocol) else None


def store(text: str, path: str, protocol: ast.Protocol) -> None:
    directory = cache_dir()
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(_encode(protocol), separators=(",", ":"))
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(payload)
        os.replace(temporary, directory / f"{_key(text, path)}.json")
        _prune(directory)
    except OSError:
        return


def _prune(directory: Path) -> None:
    """Keep the cache small: delete the least recently written entries beyond MAX_CACHE_FILES."""
    entries = sorted(directory.glob("*.json"), key=lambda entry: entry.stat().st_mtime)
    for stale in entries[:-MAX_CACHE_FILES]:
        stale.unlink(missing_ok=True)


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$": type(value).__name__, **fields}
    if isinstance(value, Fraction):
        return {"$F": f"{value.numerator}/{value.denominator}"}
    if isinstance(value, dt.date):
        return {"$D": value.isoformat()}
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(item) for item in value)
    if not isinstance(value, dict):
        return value
    if "$F" in value:
        return Fraction(value["$F"])
    if "$D" in value:
        return dt.date.fromisoformat(value["$D"])
    cls = _CLASSES[value["$"]]
    return cls(**{name: _decode(item) for name, item in value.items() if name != "$"})
