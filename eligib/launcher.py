"""The `eligib` command's entry point.

It runs the most frequent command, `eligib check PROTOCOL PATIENT` with no option, without importing
click (about a fifth of a check's start-up): the same `check_outcome` and `guarded` (shell.py) as
the click command, so the output and exit code are the same (tests/test_cli.py compares them).
Anything else (an option, another command, a folder given as a file, help) goes to the click
application in cli.py.
"""

from __future__ import annotations

import os
import sys

from eligib.shell import check_outcome, guarded


def launch() -> None:
    """The `eligib` command."""
    arguments = sys.argv[1:]
    if _plain_check(arguments):
        sys.exit(guarded(lambda: check_outcome(arguments[1], arguments[2])))
    from eligib.cli import main

    main()


def _plain_check(arguments: list[str]) -> bool:
    """`check PROTOCOL PATIENT` and nothing else, neither path an option nor a folder (click words those
    errors); PATIENT may be `-` (standard input)."""
    if len(arguments) != 3 or arguments[0] != "check":
        return False
    protocol, patient = arguments[1], arguments[2]
    if protocol.startswith("-") or (patient.startswith("-") and patient != "-"):
        return False
    return not any(path != "-" and os.path.isdir(path) for path in (protocol, patient))
