"""Helpers for the hostile-input corpus (tests/test_hostile_*.py): run eligib as a user would, in-process
or as a real process, and read what it said."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from eligib.cli import main

ROOT = Path(__file__).resolve().parent.parent
CD7 = str(ROOT / "protocols" / "cd7_car_t.elig")
CD33 = str(ROOT / "protocols" / "nct03971799_cd33_car_t.elig")
EXAMPLES = ROOT / "protocols" / "examples"


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(*args: str, stdin: str | None = None) -> Ran:
    """eligib in this process (fast): exit code and what it printed."""
    result = CliRunner().invoke(main, list(args), input=stdin)
    return Ran(result.exit_code, result.stdout, result.stderr)


def process(*args: str, timeout: float = 60, env: dict[str, str] | None = None, **popen) -> Ran:
    """eligib as a separate process, for what only a real process shows (pipes, closed stdin, hangs)."""
    environment = {**os.environ, **(env or {})}
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    completed = subprocess.run([sys.executable, "-m", "eligib.cli", *args], text=True, timeout=timeout,
                               env=environment, cwd=ROOT, **streams)
    return Ran(completed.returncode, completed.stdout or "", completed.stderr or "")


def example(name: str, **changes: object) -> dict:
    """A shipped CD7 example patient with some facts changed (None removes a fact)."""
    facts = json.loads((EXAMPLES / f"{name}.json").read_text())
    for key, value in changes.items():
        if value is None:
            facts.pop(key, None)
        else:
            facts[key] = value
    return facts


def write(path: Path, content: str | dict) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def clean_error(ran: Ran, fragment: str) -> None:
    """Exit 2, the fragment in the message, and nothing that looks like a crash."""
    assert ran.code == 2, ran.text
    assert fragment in ran.text, ran.text
    assert "Traceback" not in ran.text and "internal error" not in ran.text
