"""Words for messages about values: did-you-mean, how a raw value reads, long text clipped."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(name: str, candidates: Iterable[str]) -> str:
    """A did-you-mean hint naming the closest candidate, or "" when none is close."""
    pool = list(candidates)
    matches = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        if name.lower() in lowered:
            matches = [lowered[name.lower()]]
    return f"did you mean `{matches[0]}`?" if matches else ""


def describe(raw: object) -> str:
    """A raw value from a patient file as a message names it: `true`, the text "x", a list, `45`."""
    if isinstance(raw, bool):
        return "`true`" if raw else "`false`"
    if isinstance(raw, str):
        return f'the text "{clip(raw)}"'
    if isinstance(raw, (list, dict)):
        return "a list" if isinstance(raw, list) else "an object"
    return f"`{raw}`"


def clip(text: str, width: int = 60) -> str:
    """Long user text shortened for a message."""
    return text if len(text) <= width else text[:width - 3] + "..."
