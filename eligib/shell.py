"""What every `eligib` command shares, without click: exit codes, writing the output, rendering errors,
and `eligib check` itself (so that launcher.py can run it without click)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from eligib.api import CHECK_SECONDS
from eligib.version import __version__

EXIT = {"eligible": 0, "ineligible": 1, "undetermined": 3, "pending": 6}
EXIT_INPUT_ERROR = 2
EXIT_INTERNAL = 4

Outcome = tuple[int, str]  # (exit code, text for standard output)


def check_outcome(protocol: str, patient: str, output: str = "text", verbose: bool = False,
                  point: str | None = None, timeout: float | None = CHECK_SECONDS, facts: tuple[str, ...] = (),
                  facts_file: str | None = None, guidance: bool = True) -> Outcome:
    """`eligib check`: its exit code and text (with the coordinator's guidance unless `guidance` is off)."""
    from eligib import api

    engine = api.Engine.from_file(protocol, cache=True)
    given = engine.given(list(facts), facts_file) if facts or facts_file else None
    read = engine.patient(patient, given)
    explanation = engine.check(read, timeout=timeout, at=engine.timepoint(point))
    guided = api.guide(engine, read, explanation) if guidance else None
    info = api.run_info(engine.checked)
    match output:
        case "json":
            text = api.to_json(explanation, guided, info)
        case "html":
            text = api.to_html(explanation, guided, info)
        case _:
            text = api.to_text(explanation, verbose, guided, info)
    return EXIT[explanation.verdict], text


def validate_outcome(protocol: str, output: str = "text", strict: bool = False) -> Outcome:
    """`eligib validate`: exit 2 when the protocol has errors (or, `strict`, warnings); as text, JSON or
    SARIF. Text reports errors as every command does; JSON and SARIF hold them as findings."""
    import json

    from eligib import api

    try:
        checked = api.load(protocol, cache=True)
        diagnostics = list(checked.warnings)
    except api.DiagnosticError as exc:
        if output == "text":
            raise
        checked, diagnostics = None, list(exc.diagnostics)
    failing = any(d.severity == "error" or (strict and d.severity == "warning") for d in diagnostics)
    code = EXIT_INPUT_ERROR if failing else 0
    if output == "json":
        return code, json.dumps(api.validate_data(protocol, diagnostics, strict), indent=2, ensure_ascii=False) + "\n"
    if output == "sarif":
        log = api.sarif_log(diagnostics, __version__, strict)
        return code, json.dumps(log, indent=2, ensure_ascii=False) + "\n"
    if diagnostics:
        say(api.diagnostics_text(diagnostics))
    if failing:
        return code, f"{protocol}: warnings count as errors (--strict)\n"
    assert checked is not None
    return 0, (f"{protocol}: ok ({len(checked.facts)} facts, {len(checked.criteria)} criteria, "
               f"{len(checked.assertions)} assertions, {len(checked.bindings)} FHIR bindings)\n")


def guarded(run: Callable[[], Outcome]) -> int:
    """Run a command, turning every error into rendered diagnostics and an exit code; then write its
    output (see cli.py's docstring)."""
    from eligib import api

    try:
        code, text = run()
    except api.EligibError as exc:
        say(api.diagnostics_text(exc.diagnostics, exc.omitted))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug of ours: say so plainly; the traceback only when asked for
        say(_internal_error(exc))
        return EXIT_INTERNAL
    return _write(text, code)


def _internal_error(exc: Exception) -> str:
    from eligib import api

    detail = api.error("internal-error", f"internal error in eligib: {type(exc).__name__}: {exc}",
                       help="please report this with the input files; --debug shows the traceback")
    text = api.diagnostics_text([detail])
    if api.debugging():
        import traceback

        text = "".join(traceback.format_exception(exc)) + "\n" + text
    return text


def _write(text: str, code: int) -> int:
    if sys.stdout is None:  # started with standard output closed: nothing to write to
        return code
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped early (`| head`): the result stands, and so does its code
        _discard_stdout()
        return code
    except OSError as exc:
        _discard_stdout()
        say(f"error[io]: cannot write the output: {exc.strerror or exc}\n")
        return EXIT_INPUT_ERROR
    return code


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so that Python's final flush cannot fail (and change the code)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        return


def say(text: str) -> None:
    """Write to standard error (diagnostics, warnings); a stream that cannot take it is let be."""
    if sys.stderr is None:
        return
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError:
        return
