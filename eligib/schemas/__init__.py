"""The JSON Schemas (2020-12) of eligib's JSON output, shipped with the package so that programs
consuming the output can validate it: `eligib.check/2`, `eligib.validate/1`, `eligib.verify/1` and `eligib.diff/1`.

docs/json-schema.md shows and explains them; a test keeps the two identical, and the suite
validates the output of every command against them.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

OUTPUTS = ("check", "validate", "verify", "diff")


def output_schema(command: str) -> dict[str, Any]:
    """The schema of `eligib COMMAND --format json` for COMMAND in check, validate, verify, diff."""
    if command not in OUTPUTS:
        raise ValueError(f"no output schema for `{command}`; there are: {', '.join(OUTPUTS)}")
    text = resources.files(__name__).joinpath(f"{command}.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
