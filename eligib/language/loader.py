"""Read protocol files, through a cache of parsed protocols so a repeated check skips Lark entirely.

The cache is like Python's .pyc files, but it trusts nothing it reads back:
- an entry is named by a hash of the protocol text, its path, the grammar and eligib's version;
- its content is plain JSON data (never pickle, so an entry cannot run code), sealed with an
  HMAC-SHA256 under a random key that only this user can read: an entry that was edited, copied
  over another, or written by anyone else fails the check and is ignored (the protocol is parsed
  again);
- the folder must belong to this user and be writable by no one else, entries must be regular files
  (a FIFO or a link planted there is not opened), and their size is bounded.
Any problem reading or writing the cache means "parse again". Set ELIGIB_NO_CACHE=1 to bypass it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import stat
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

from eligib.language import ast
from eligib.language.grammar import grammar_text
from eligib.language.reading import read_source
from eligib.language.source import SourceFile, Span
from eligib.limits import MAX_CACHE_ENTRY_BYTES, MAX_PROTOCOL_BYTES
from eligib.version import __version__

FORMAT = 11
MAX_CACHE_FILES = 256  # oldest entries go first beyond this
KEY_BYTES = 32
_CLASSES = {cls.__name__: cls for cls in vars(ast).values()
            if isinstance(cls, type) and dataclasses.is_dataclass(cls)} | {"Span": Span}
_ENUMS = {cls.__name__: cls for cls in vars(ast).values() if isinstance(cls, type) and issubclass(cls, StrEnum)}


def load_protocol(path: str, cache: bool = False) -> tuple[ast.Protocol, SourceFile]:
    """Parse a protocol file; with `cache`, take its parse from the cache when the text is unchanged
    (and store a new parse there). The library does not write a cache unless asked (the CLI asks)."""
    source = read_source(path, "protocol", MAX_PROTOCOL_BYTES)
    protocol = load(source, path) if cache else None
    if protocol is None:
        from eligib.language.parser import parse  # imports Lark: only for a new or changed protocol

        protocol = parse(source.text, path, source)
        if cache:
            store(source.text, path, protocol)
    return protocol, source


def cache_dir() -> Path | None:
    """The cache folder, or None when it is turned off or not safely this user's own."""
    if os.environ.get("ELIGIB_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eligib"


def _private_dir(create: bool) -> Path | None:
    directory = cache_dir()
    if directory is None:
        return None
    try:
        if create:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(directory)
    except OSError:
        return None
    owned = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    if not stat.S_ISDIR(info.st_mode) or not owned or info.st_mode & 0o022:
        return None  # a link, another user's folder, or one that others may write to: not trusted
    return directory


def _read_private(path: Path, limit: int, secret: bool = False) -> bytes | None:
    """A regular file of this user's, opened without following links or blocking; None otherwise.
    A `secret` file must also be unreadable to everyone else."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(descriptor)
        owned = not hasattr(os, "getuid") or info.st_uid == os.getuid()
        if not stat.S_ISREG(info.st_mode) or not owned or info.st_size > limit or (secret and info.st_mode & 0o077):
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read(limit + 1)
    except OSError:
        return None
    finally:
        os.close(descriptor)


def _secret(directory: Path) -> bytes | None:
    """This user's cache key, created on first use (readable by no one else)."""
    path = directory / "key"
    if os.path.lexists(path):
        key = _read_private(path, KEY_BYTES, secret=True)  # a key others can read or write proves nothing
        return key if key is not None and len(key) == KEY_BYTES else None
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError:
        return None
    import secrets  # only when the cache is first created: not on every start

    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key


def _key(text: str, path: str) -> str:
    grammar = grammar_text().encode("utf-8")
    digest = hashlib.sha256()
    for part in (str(FORMAT), __version__, path):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(grammar + b"\0" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _seal(key: bytes, name: str, payload: bytes) -> str:
    return hmac.new(key, name.encode() + b"\0" + payload, hashlib.sha256).hexdigest()


def load(source: SourceFile, path: str) -> ast.Protocol | None:
    """The cached parse of this source, if a sealed entry for exactly its text exists; None means parse again.
    The spans of the protocol returned point into `source`."""
    text = source.text
    directory = _private_dir(create=False)
    key = _secret(directory) if directory is not None else None
    if directory is None or key is None:
        return None
    name = _key(text, path)
    content = _read_private(directory / f"{name}.json", MAX_CACHE_ENTRY_BYTES)
    if content is None:
        return None
    seal, _, payload = content.partition(b"\n")
    if not hmac.compare_digest(seal, _seal(key, name, payload).encode()):
        return None
    try:
        node = _Decoder(source).decode(json.loads(payload))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return node if isinstance(node, ast.Protocol) else None


def store(text: str, path: str, protocol: ast.Protocol) -> None:
    directory = _private_dir(create=True)
    key = _secret(directory) if directory is not None else None
    if directory is None or key is None:
        return
    name = _key(text, path)
    try:
        payload = json.dumps(_encode(protocol), separators=(",", ":")).encode("utf-8")
    except (ValueError, RecursionError):
        return
    if len(payload) > MAX_CACHE_ENTRY_BYTES:
        return
    try:
        import tempfile  # only when a parse is stored: not on every start

        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(_seal(key, name, payload).encode() + b"\n" + payload)
        os.replace(temporary, directory / f"{name}.json")
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
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)
                  if f.init and f.metadata.get("cached", True)}
        return {"$": type(value).__name__, **fields}
    if isinstance(value, StrEnum):
        return {"$E": type(value).__name__, "v": value.value}
    if isinstance(value, Fraction):
        return {"$F": f"{value.numerator}/{value.denominator}"}
    if isinstance(value, dt.date):
        return {"$D": value.isoformat()}
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value


class _Decoder:
    """Cached JSON -> AST; every span gets the protocol's source back (it is not stored)."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return tuple(self.decode(item) for item in value)
        if not isinstance(value, dict):
            return value
        if "$F" in value:
            return Fraction(value["$F"])
        if "$D" in value:
            return dt.date.fromisoformat(value["$D"])
        if "$E" in value:
            return _ENUMS[value["$E"]](value["v"])
        cls = _CLASSES[value["$"]]
        fields = {name: self.decode(item) for name, item in value.items() if name != "$"}
        if cls is Span:
            fields["source"] = self.source
        return cls(**fields)
