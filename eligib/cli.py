"""The `eligib` command: a thin shell over eligib.api. Exit codes: 0 eligible, 1 ineligible,
3 undetermined, 2 usage or input error, 4 internal error, 5 the solver gave up (time limit).

Each command computes its exit code and its output first; `guarded` (shell.py) then writes the output. So
the exit code always reports the result: a reader that stops early (`| head`, `| true`) does not
turn an ineligible patient into exit 0, and output that cannot be written (a full disk) is an error.
Every error is a diagnostic, rendered one way; `--debug` (or ELIGIB_DEBUG=1) adds the traceback of
an internal error.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from eligib.api import CHECK_SECONDS, VERIFY_QUERY_SECONDS, VERIFY_SECONDS
from eligib.shell import EXIT, EXIT_INPUT_ERROR, EXIT_INTERNAL, Outcome, check_outcome, guarded, validate_outcome
from eligib.version import __version__

__all__ = ["EXIT", "EXIT_INPUT_ERROR", "EXIT_INTERNAL", "main"]


def _timeout_option(default: float | None, what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    shown = f"{default:g} s" if default is not None else "none"
    return click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=default, metavar="SECONDS",
                        help=f"Seconds of solver time for {what} in all (default {shown}); past it, exit 5.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eligib")
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error (or set ELIGIB_DEBUG=1).")
def main(debug: bool) -> None:
    """Check patients against clinical-trial eligibility protocols, with explanations."""
    if debug:
        os.environ["ELIGIB_DEBUG"] = "1"


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.argument("patient", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "output", type=click.Choice(["text", "json", "html"]), default="text", show_default=True,
              help="Readable text, JSON with a stable schema, or an HTML report that prints on A4.")
@click.option("-v", "--verbose", is_flag=True, help="List every criterion with its reasons, and every either/or path.")
@click.option("--no-guidance", "no_guidance", is_flag=True,
              help="Leave out what to do next (conditions on missing facts, changes, dates): faster.")
@click.option("--at", "point", metavar="TIMEPOINT",
              help="For a protocol with time points: judge what is assessed by TIMEPOINT (default: the first); "
                   "`final` judges every criterion.")
@_timeout_option(CHECK_SECONDS, "the check")
@click.option("--fact", "facts", multiple=True, metavar="NAME=VALUE",
              help="A fact the file lacks (a study's anchor for a FHIR record): --fact screening_date=2026-11-20.")
@click.option("--facts", "facts_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A facts file (JSON, YAML) whose facts are added to PATIENT's; a fact both give is an error.")
def check(protocol: str, patient: str, output: str, verbose: bool, no_guidance: bool, point: str | None,
          timeout: float, facts: tuple[str, ...], facts_file: str | None) -> None:
    """Check PATIENT (a JSON or YAML facts file or a FHIR R4 bundle, `-` for stdin) against PROTOCOL."""
    sys.exit(guarded(lambda: check_outcome(protocol, patient, output, verbose, point, timeout, facts, facts_file,
                                           not no_guidance)))


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.option("--format", "output", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True,
              help="Readable text, JSON (eligib.validate/1), or SARIF 2.1.0 for CI and code review tools.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors: exit 2 when there is any.")
def validate(protocol: str, output: str, strict: bool) -> None:
    """Check PROTOCOL for errors (names, types, units, duplicates) without a patient."""
    sys.exit(guarded(lambda: validate_outcome(protocol, output, strict)))


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
def facts(protocol: str) -> None:
    """List the facts PROTOCOL declares, with types, units, ranges and descriptions."""
    def run() -> Outcome:
        from eligib import api

        checked = api.load(protocol, cache=True)
        lines = []
        for info in checked.facts.values():
            lines.append(_declaration_line(checked, info.decl, ""))
            lines += [_declaration_line(checked, field, "    ") for field in info.decl.fields]
        return 0, "".join(lines)

    sys.exit(guarded(run))


def _declaration_line(checked: Any, declared: Any, indent: str) -> str:
    """One fact (or history field) as `eligib facts` lists it."""
    separator = " < " if declared.type.ordered else ", "
    kind = declared.type.kind if declared.type.kind != "enum" else f"one of ({separator.join(declared.type.values)})"
    parts = [kind + (f" {declared.type.unit}" if declared.type.unit else "")]
    if declared.type.kind == "list":
        parts.append(f"at most {checked.facts[declared.name].type.max_items} items")
        parts += [f"ordered by {declared.order}"] if declared.order else []
    if declared.low is not None or declared.high is not None:
        low = declared.low.text if declared.low else "..."
        high = declared.high.text if declared.high else "..."
        parts.append(f"from {low} to {high}")
    if declared.optional:
        parts.append("or none")
    if declared.guard is not None:
        parts.append(f"only if {checked.text(declared.guard)}")
    if declared.assessed:
        parts.append(f"assessed at {' and '.join(declared.assessed)}")
    if declared.change is not None:
        parts.append(str(declared.change))
    description = f"  # {declared.description}" if declared.description else ""
    return f"{indent}{declared.name}: {', '.join(parts)}{description}\n"


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.option("--format", "output", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True,
              help="Readable text, JSON (eligib.verify/1), or SARIF 2.1.0 for CI and code review tools.")
@click.option("--strict", is_flag=True, help="Fail on warnings (redundant criteria, dead exclusions) too.")
@click.option("--witness-dir", type=click.Path(file_okay=False),
              help="Write every witness patient there as a facts file `eligib check` accepts.")
@_timeout_option(VERIFY_SECONDS, "the whole verification")
def verify(protocol: str, output: str, strict: bool, witness_dir: str | None, timeout: float) -> None:
    """Prove PROTOCOL consistent: satisfiable, no dead paths, assertions proved; a witness for each finding."""
    def run() -> Outcome:
        from eligib import api

        engine = api.Engine.from_file(protocol, cache=True)
        findings = api.verify(engine, api.Budget(timeout, VERIFY_QUERY_SECONDS))
        if witness_dir:
            _write_witnesses(witness_dir, findings)
        if output == "sarif":
            text = json.dumps(api.sarif_log(list(findings), __version__, strict), indent=2) + "\n"
        else:
            text = json.dumps(api.verify_data(protocol, findings), indent=2) + "\n" if output == "json" \
                else api.verify_text(protocol, findings)
        failing = {"error", "warning"} if strict else {"error"}
        return (1 if any(f.severity in failing for f in findings) else 0), text

    sys.exit(guarded(run))


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path())
@click.option("--out", "results", type=click.Path(dir_okay=False), callback=lambda _c, _p, path: _results_file(path),
              help="Write every patient's result there: .parquet, .csv or .jsonl.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="The attrition report as readable text, or JSON.")
@click.option("--history", "histories", multiple=True, metavar="NAME=FILE", callback=lambda _c, _p, given: dict(
                  _name_and_file(one) for one in given),
              help="The child table of history NAME (default: DATA's name with .NAME before the suffix).")
@click.option("--table", metavar="NAME", help="The table to read from a DuckDB database file.")
@click.option("--plot", metavar="FILE", callback=lambda _c, _p, path: _chart(path),
              help="Draw the attrition funnel there: .png, .svg or .pdf (needs eligib[plot]).")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Processes checking the rows SQL leaves open (default: one per core when there are many).")
@click.option("--at", "point", metavar="TIMEPOINT",
              help="For a protocol with time points: judge as `eligib check --at` (default: the first).")
@click.option("--engine", "backend", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="DuckDB on this machine, or Spark (needs eligib[spark] and Java 17).")
@click.option("--master", metavar="URL", help="With --engine spark: the Spark master (default: local[*]).")
@click.option("--fact", "facts", multiple=True, metavar="NAME=VALUE",
              help="A fact every patient gets, which DATA lacks: --fact screening_date=2026-11-20.")
@click.option("--facts", "facts_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A facts file (JSON, YAML) giving every patient its facts; a fact DATA gives too is an error.")
def screen(protocol: str, data: str, results: str | None, output: str, histories: dict[str, str],
           table: str | None, plot: str | None, workers: int | None, point: str | None, backend: str,
           master: str | None, facts: tuple[str, ...], facts_file: str | None) -> None:
    """Screen every patient of DATA (a table: CSV, Parquet, JSON Lines, DuckDB; or a folder of FHIR records)
    against PROTOCOL, with DuckDB or Spark."""
    if master is not None and backend != "spark":
        raise click.BadParameter("a Spark master is for --engine spark", param_hint="--master")
    if workers is not None and backend == "spark":
        raise click.BadParameter("Spark runs a task per core of its executors; set them with --master, "
                                 "e.g. local[4]", param_hint="--workers")

    def run() -> Outcome:
        from eligib import api

        engine = api.Engine.from_file(protocol, cache=True)
        progress = _progress() if backend == "duckdb" else None
        with api.screen(engine, data, histories, table, workers, progress, point, backend, master, None, facts,
                        facts_file) as screening:
            if results:
                screening.write(results)
            report = screening.attrition()
        if plot:
            api.plot_funnel(report, plot)
        text = json.dumps(report.data(), indent=2) + "\n" if output == "json" else api.attrition_text(report) + "\n"
        return 0, text

    sys.exit(guarded(run))


def _results_file(path: str | None) -> str | None:
    if path is not None and Path(path).suffix.lower() not in (".parquet", ".csv", ".jsonl", ".ndjson", ".json"):
        raise click.BadParameter(f"`{path}`: name the results file .parquet, .csv or .jsonl", param_hint="--out")
    return path


def _chart(path: str | None) -> str | None:
    if path is not None and Path(path).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise click.BadParameter(f"`{path}`: name the chart .png, .svg or .pdf", param_hint="--plot")
    return path


def _name_and_file(given: str) -> tuple[str, str]:
    name, equals, path = given.partition("=")
    if not equals or not name or not path:
        raise click.BadParameter(f"`{given}`: write NAME=FILE, e.g. prior_regimens=regimens.csv",
                                 param_hint="--history")
    return name, path


def _progress() -> Callable[[int, int], None] | None:
    """A progress line on standard error when it is a terminal (quiet otherwise)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\rchecking the rows SQL left open: {done:,}/{total:,}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _write_witnesses(directory: str, findings: list[Any]) -> None:
    """Write each witness into `directory` without following links planted there: a file is written
    under a fresh name (never an existing path) and then renamed over its final name."""
    import secrets

    from eligib import api

    def failed(exc: OSError) -> api.DiagnosticError:
        return api.DiagnosticError([api.error("io", f"cannot write witnesses to `{directory}`: {exc.strerror or exc}")])

    try:
        os.makedirs(directory, exist_ok=True)
        folder = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise failed(exc) from None
    try:
        for index, finding in enumerate(f for f in findings if f.witness is not None):
            name = f"{index:03d}-{finding.code}-{finding.subject or 'protocol'}"[:120] + ".json"
            temporary = f".{name}.{secrets.token_hex(8)}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(temporary, flags, 0o644, dir_fd=folder), "w", encoding="utf-8") as handle:
                handle.write(json.dumps(finding.witness, indent=2) + "\n")
            os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError as exc:
        raise failed(exc) from None
    finally:
        os.close(folder)


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.option("--path", "path", help="A named path the patient must qualify through, e.g. disease.aml.refractory.")
@click.option("--failing", multiple=True, help="A criterion the patient must fail (repeatable); all others pass.")
@_timeout_option(VERIFY_SECONDS, "finding the patient")
def example(protocol: str, path: str | None, failing: tuple[str, ...], timeout: float) -> None:
    """Print a patient facts file for PROTOCOL: eligible through --path, or ineligible exactly by --failing."""
    def run() -> Outcome:
        from eligib import api

        engine = api.Engine.from_file(protocol, cache=True)
        facts = api.example(engine, path, failing, api.Budget(timeout, VERIFY_QUERY_SECONDS))
        return 0, json.dumps(facts, indent=2) + "\n"

    sys.exit(guarded(run))


@main.command()
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_timeout_option(VERIFY_SECONDS, "the comparison")
def diff(old: str, new: str, output: str, timeout: float) -> None:
    """Compare two versions of a protocol: proven equivalent, or patients one admits and the other rejects."""
    def run() -> Outcome:
        from eligib import api

        budget = api.Budget(timeout, VERIFY_QUERY_SECONDS)
        difference = api.diff(api.Engine.from_file(old, cache=True), api.Engine.from_file(new, cache=True), budget)
        text = json.dumps(api.diff_data(old, new, difference), indent=2) + "\n" if output == "json" \
            else api.diff_text(old, new, difference)
        return (0 if difference.equivalent else 1), text

    sys.exit(guarded(run))


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
def schema(protocol: str) -> None:
    """Print the JSON Schema (2020-12) of PROTOCOL's patient facts files."""
    def run() -> Outcome:
        from eligib import api

        return 0, json.dumps(api.patient_schema(api.load(protocol, cache=True)), indent=2) + "\n"

    sys.exit(guarded(run))


@main.command("test")
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.argument("cases", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_timeout_option(CHECK_SECONDS, "each case")
@click.option("--root", type=click.Path(file_okay=False, exists=True),
              help="Let cases name patient files anywhere under this folder (default: the case file's folder).")
def test_cases(protocol: str, cases: tuple[str, ...], timeout: float, root: str | None) -> None:
    """Run the CASES files (YAML or TOML: patients with expected outcomes) against PROTOCOL."""
    def run() -> Outcome:
        from eligib import api

        results = api.run_case_files(api.Engine.from_file(protocol, cache=True), list(cases), timeout, root)
        return (0 if all(r.passed for r in results) else 1), api.test_report(results)

    sys.exit(guarded(run))


if __name__ == "__main__":
    main()
