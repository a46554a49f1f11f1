"""Run the examples of a markdown document, the way a reader would, and compare what they print.

Conventions in docs/*.md and README.md (docs/testing.md has the reader's version):
- A fenced block whose info string names a file, such as ```` ```text file=mini.elig ````, is that
  file's content: it is written into the document's folder where it appears.
- A ```` ```console ```` block holds commands (`$ ...`) and what each prints (standard output and
  standard error, as a terminal shows them). The commands run in order, in one folder per document
  that holds a `protocols` link to the repository's protocols, so later commands see earlier files.
- In shown output, a line `[...]` stands for any number of lines, and `[...]` within a line for
  any text within that line.
- `<!-- docs: not run -->` just before a block keeps it from running (output that depends on the
  machine, such as timings); each such block says why next to the marker.
- ```` ```python ```` blocks run, and ```` ```pycon ```` blocks (`>>> ` prompts and what each prints)
  are checked with the standard library's doctest, in the document's folder, in one namespace per
  document; doctest's `...` stands for any text in their output.
- ```` ```sh ```` blocks are templates (`eligib check PROTOCOL PATIENT`) and are not run.
"""

from __future__ import annotations

import contextlib
import doctest
import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
ELISION = "[...]"
NOT_RUN = "<!-- docs: not run"
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)


@dataclass
class Command:
    line: int  # 1-based line of the `$ ` line in the document
    text: str
    expected: list[str]
    shown_at: tuple[int, int]  # lines (start, end) of the expected output in the document, end exclusive
    python: bool = False  # a `>>>` line of a Python session


@dataclass
class Block:
    kind: str  # "file", "console", "python", "pycon", "skip"
    line: int
    content: str = ""
    file: str = ""
    commands: list[Command] = field(default_factory=list)


def blocks(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        language, info, body = match.group(1), match.group(2), match.group(3)
        start_line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip().rsplit("\n", 1)[-1]
        file = re.search(r"\bfile=(\S+)", info)
        if before.startswith(NOT_RUN):
            found.append(Block("skip", start_line))
        elif file:
            found.append(Block("file", start_line, body, file.group(1)))
        elif language == "console":
            found.append(Block("console", start_line, body, commands=_commands(body, start_line + 1)))
        elif language in ("python", "pycon"):
            found.append(Block(language, start_line, body))
    return found


def _commands(body: str, first_line: int) -> list[Command]:
    commands: list[Command] = []
    for offset, line in enumerate(body.split("\n")[:-1] if body.endswith("\n") else body.split("\n")):
        if line.startswith("$ "):
            commands.append(Command(first_line + offset, line[2:], [], (first_line + offset + 1,) * 2))
        elif commands:
            current = commands[-1]
            current.expected.append(line)
            current.shown_at = (current.shown_at[0], first_line + offset + 1)
    return commands


def environment(folder: Path) -> dict[str, str]:
    bin_folder = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(folder),
            "XDG_CACHE_HOME": str(folder / ".cache"), "COLUMNS": "80", "TERM": "dumb", "LANG": "C.UTF-8",
            "TZ": "UTC", "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1",
            "SOURCE_DATE_EPOCH": "1796169600"}  # 2026-12-02T00:00:00Z: a check's report says when it was made


MARK = "<<<eligib-docs-command-done>>>"


def run_commands(commands: list[str], folder: Path) -> list[list[str]]:
    """Run commands one after another in one shell (so `echo $?` and `cd` work as for a reader);
    the lines each printed, standard error and standard output together."""
    script = "".join(f"{command} 2>&1\n__status=$?\nprintf '\\n%s\\n' '{MARK}'\n(exit $__status)\n"
                     for command in commands)
    completed = subprocess.run(["bash", "-c", script], cwd=folder, env=environment(folder), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    printed = completed.stdout.decode("utf-8", errors="replace").split(f"\n{MARK}\n")
    outputs = [part.split("\n") for part in printed[:len(commands)]]
    outputs += [[f"(the shell stopped before this command: {printed[-1][-300:]})"]] * (len(commands) - len(outputs))
    return [[line.rstrip() for line in lines] for lines in outputs]


def _trimmed(lines: list[str]) -> list[str]:
    """Lines without trailing spaces, and without the blank lines at the end (a document does not show them)."""
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """Shown output against printed output; a `[...]` line matches any number of lines."""
    expected, actual = _trimmed(expected), _trimmed(actual)
    if not any(ELISION in line for line in expected):
        return expected == actual
    pattern = "".join(_line_pattern(line) for line in expected)
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual), re.S) is not None


def _line_pattern(line: str) -> str:
    """A `[...]` line stands for any lines; `[...]` inside a line, for any text within that line."""
    if line == ELISION:
        return ".*?"
    return "[^\n]*?".join(re.escape(part) for part in line.split(ELISION)) + "\n"


@dataclass
class Mismatch:
    document: Path
    command: Command
    actual: list[str]

    def __str__(self) -> str:
        shown = "\n".join(f"    {line}" for line in self.command.expected) or "    (nothing)"
        printed = "\n".join(f"    {line}" for line in self.actual) or "    (nothing)"
        return (f"{self.document.relative_to(ROOT)}:{self.command.line}: `{self.command.text}`\n"
                f"  the document shows:\n{shown}\n  it prints:\n{printed}")


def shared_files(documents: list[Path]) -> dict[str, str]:
    """Every file block of every document, by name: a document may use an example file another shows.
    A name given two different contents is an error (the documents would disagree about it)."""
    found: dict[str, tuple[str, str]] = {}
    for document in documents:
        for block in blocks(document):
            if block.kind != "file":
                continue
            where = f"{document.name}:{block.line}"
            if block.file in found and found[block.file][0] != block.content:
                raise ValueError(f"{where}: `{block.file}` differs from the one at {found[block.file][1]}")
            found.setdefault(block.file, (block.content, where))
    return {name: content for name, (content, _) in found.items()}


def write_files(folder: Path, files: dict[str, str]) -> None:
    """Write example files (names may have folders: `valuesets/myeloma.elig`)."""
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content, encoding="utf-8")


def run_document(document: Path, folder: Path, shared: dict[str, str] | None = None) -> list[Mismatch]:
    """Run every example of a document in `folder` (holding the `shared` example files first); the
    commands whose output differs from what the document shows."""
    (folder / "protocols").symlink_to(ROOT / "protocols")
    write_files(folder, shared or {})
    mismatches: list[Mismatch] = []
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in blocks(document):
        if block.kind == "file":
            write_files(folder, {block.file: block.content})
        elif block.kind == "console":
            outputs = run_commands([command.text for command in block.commands], folder)
            for command, actual in zip(block.commands, outputs):
                if not matches(command.expected, actual):
                    mismatches.append(Mismatch(document, command, actual))
        elif block.kind == "python":
            with contextlib.chdir(folder):
                exec(compile(block.content, f"{document}:{block.line}", "exec"), namespace)  # our own docs
        elif block.kind == "pycon":
            with contextlib.chdir(folder):
                mismatches += _run_session(document, block, namespace)
    return mismatches


class _Collector(doctest.DocTestRunner):
    """A doctest runner that keeps each failure (as a Mismatch) instead of printing it."""

    def __init__(self, document: Path, first_line: int) -> None:
        super().__init__(optionflags=doctest.ELLIPSIS | doctest.REPORT_ONLY_FIRST_FAILURE)
        self.document, self.first_line, self.found = document, first_line, []

    def _mismatch(self, example: doctest.Example, printed: str) -> None:
        line = self.first_line + 1 + example.lineno
        command = Command(line, example.source.strip(), example.want.rstrip("\n").split("\n"), (line + 1, line + 1),
                          python=True)
        self.found.append(Mismatch(self.document, command, printed.rstrip("\n").split("\n")))

    def report_failure(self, out: Any, test: doctest.DocTest, example: doctest.Example, got: str) -> None:
        self._mismatch(example, got)

    def report_unexpected_exception(self, out: Any, test: doctest.DocTest, example: doctest.Example,
                                    exc_info: Any) -> None:
        self._mismatch(example, "".join(traceback.format_exception(*exc_info)))


def _run_session(document: Path, block: Block, namespace: dict[str, Any]) -> list[Mismatch]:
    test = doctest.DocTestParser().get_doctest(block.content, namespace, document.name, str(document), block.line)
    runner = _Collector(document, block.line)
    runner.run(test, out=lambda text: None, clear_globs=False)
    namespace.update(test.globs)  # doctest runs on a copy; later blocks see what this one defined
    return runner.found


def update(document: Path, mismatches: list[Mismatch]) -> list[Mismatch]:
    """Write what the commands print into the document; returns the mismatches it could not fix
    (shown output with `[...]`, which only a person can shorten, and Python sessions)."""
    lines = document.read_text(encoding="utf-8").split("\n")
    left = []
    for mismatch in sorted(mismatches, key=lambda m: m.command.line, reverse=True):
        if any(ELISION in line for line in mismatch.command.expected)  or mismatch.command.python:
            left.append(mismatch)
            continue
        start, end = mismatch.command.shown_at
        lines[start - 1:end - 1] = _trimmed(mismatch.actual)
    document.write_text("\n".join(lines), encoding="utf-8")
    return left
