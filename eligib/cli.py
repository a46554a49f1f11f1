"""The `eligib` command: a thin shell over eligib.api. Exit codes: 0 eligible, 1 ineligible,
3 undetermined, 2 usage or input error, 4 internal error, 5 the solver gave up (time limit)."""

from __future__ import annotations

import json
import sys

import click

from eligib.diagnostics import DiagnosticError

EXIT = {"eligible": 0, "ineligible": 1, "undetermined": 3}
EXIT_INPUT_ERROR = 2
EXIT_INTERNAL = 4
EXIT_SOLVER_GAVE_UP = 5


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eligib")
def main() -> None:
    """Check patients against clinical-trial eligibility protocols, with explanations."""


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.argument("patient", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Readable text, or JSON with a stable schema.")
@click.option("-v", "--verbose", is_flag=True, help="Give the reasons for every criterion, not only the open ones.")
def check(protocol: str, patient: str, output: str, verbose: bool) -> None:
    """Check PATIENT (a JSON or YAML facts file, `-` for stdin) against PROTOCOL."""
    def run() -> int:
        from eligib.api import Engine
        from eligib.render import to_json, to_text

        engine = Engine.from_file(protocol)
        explanation = engine.check(patient)
        click.echo(to_json(explanation) if output == "json" else to_text(explanation, verbose), nl=False)
        return EXIT[explanation.verdict]

    sys.exit(_guarded(run))


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
def validate(protocol: str) -> None:
    """Check PROTOCOL for errors (names, types, units, duplicates) without a patient."""
    def run() -> int:
        from eligib.checker import load
        from eligib.render import diagnostics_text

        checked = load(protocol)
        if checked.warnings:
            click.echo(diagnostics_text(checked.warnings, {checked.source.path: checked.source}), err=True, nl=False)
        click.echo(f"{protocol}: ok ({len(checked.facts)} facts, {len(checked.criteria)} criteria, "
                   f"{len(checked.assertions)} assertions, {len(checked.bindings)} FHIR bindings)")
        return 0

    sys.exit(_guarded(run))


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
def facts(protocol: str) -> None:
    """List the facts PROTOCOL declares, with types, units, ranges and descriptions."""
    def run() -> int:
        from eligib.checker import load

        checked = load(protocol)
        for name, info in checked.facts.items():
            declared = info.decl
            kind = declared.type.kind if declared.type.kind != "enum" else f"one of ({', '.join(declared.type.values)})"
            parts = [kind + (f" {declared.type.unit}" if declared.type.unit else "")]
            if declared.low is not None or declared.high is not None:
                low = declared.low.text if declared.low else "..."
                high = declared.high.text if declared.high else "..."
                parts.append(f"from {low} to {high}")
            if declared.optional:
                parts.append("or none")
            if declared.guard is not None:
                parts.append(f"only if {checked.source.line_text(declared.guard.span.line)[declared.guard.span.column - 1:declared.guard.span.end_column - 1]}")
            description = f"  # {declared.description}" if declared.description else ""
            click.echo(f"{name}: {', '.join(parts)}{description}")
        return 0

    sys.exit(_guarded(run))


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Fail on warnings (redundant criteria, dead exclusions) too.")
@click.option("--witness-dir", type=click.Path(file_okay=False),
              help="Write every witness patient there as a facts file `eligib check` accepts.")
def verify(protocol: str, output: str, strict: bool, witness_dir: str | None) -> None:
    """Prove PROTOCOL consistent: satisfiable, no dead paths, assertions proved; a witness for each finding."""
    def run() -> int:
        from eligib.api import Engine
        from eligib.render import verify_data, verify_text
        from eligib.verify import verify as prove

        engine = Engine.from_file(protocol)
        findings = prove(engine)
        if witness_dir:
            _write_witnesses(witness_dir, findings)
        sources = {engine.checked.source.path: engine.checked.source}
        text = json.dumps(verify_data(protocol, findings), indent=2) + "\n" if output == "json" \
            else verify_text(protocol, findings, sources)
        click.echo(text, nl=False)
        failing = {"error", "warning"} if strict else {"error"}
        return 1 if any(f.severity in failing for f in findings) else 0

    sys.exit(_guarded(run))


def _write_witnesses(directory: str, findings) -> None:
    from pathlib import Path

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for index, finding in enumerate(f for f in findings if f.witness is not None):
        name = f"{index:03d}-{finding.code}-{finding.subject or 'protocol'}"[:120] + ".json"
        (target / name).write_text(json.dumps(finding.witness, indent=2) + "\n", encoding="utf-8")


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.option("--path", "path", help="A named path the patient must qualify through, e.g. disease.aml.refractory.")
@click.option("--failing", multiple=True, help="A criterion the patient must fail (repeatable); all others pass.")
def example(protocol: str, path: str | None, failing: tuple[str, ...]) -> None:
    """Print a patient facts file for PROTOCOL: eligible through --path, or ineligible exactly by --failing."""
    def run() -> int:
        from eligib.api import Engine
        from eligib.verify import NoSuchPatient, example as make_example

        engine = Engine.from_file(protocol)
        try:
            facts = make_example(engine, path, failing)
        except NoSuchPatient as exc:
            because = f"; ruled out by {', '.join(f'`{c}`' for c in exc.core)}" if exc.core else ""
            click.echo(f"error[no-such-patient]: no patient meets this request{because}", err=True)
            return 1
        click.echo(json.dumps(facts, indent=2))
        return 0

    sys.exit(_guarded(run))


@main.command()
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff(old: str, new: str, output: str) -> None:
    """Compare two versions of a protocol: proven equivalent, or patients one admits and the other rejects."""
    def run() -> int:
        from eligib.api import Engine
        from eligib.diff import diff as compare
        from eligib.render import diff_data, diff_text

        difference = compare(Engine.from_file(old), Engine.from_file(new))
        text = json.dumps(diff_data(old, new, difference), indent=2) + "\n" if output == "json" \
            else diff_text(old, new, difference)
        click.echo(text, nl=False)
        return 0 if difference.equivalent else 1

    sys.exit(_guarded(run))


@main.command()
@click.argument("protocol", type=click.Path(dir_okay=False))
def schema(protocol: str) -> None:
    """Print the JSON Schema (2020-12) of PROTOCOL's patient facts files."""
    def run() -> int:
        from eligib.checker import load
        from eligib.schema import patient_schema

        click.echo(json.dumps(patient_schema(load(protocol)), indent=2))
        return 0

    sys.exit(_guarded(run))


@main.command("test")
@click.argument("protocol", type=click.Path(dir_okay=False))
@click.argument("cases", nargs=-1, required=True, type=click.Path(dir_okay=False))
def test_cases(protocol: str, cases: tuple[str, ...]) -> None:
    """Run the CASES files (YAML or TOML: patients with expected outcomes) against PROTOCOL."""
    def run() -> int:
        from eligib.api import Engine
        from eligib.cases import run_files
        from eligib.render import test_report

        results = run_files(Engine.from_file(protocol), list(cases))
        click.echo(test_report(results), nl=False)
        return 0 if all(r.passed for r in results) else 1

    sys.exit(_guarded(run))


def _guarded(run) -> int:
    """Run a command, turning every user error into a rendered diagnostic and an exit code."""
    from eligib.solver import SolverTimeout

    try:
        return run()
    except DiagnosticError as exc:
        from eligib.render import diagnostics_text

        click.echo(diagnostics_text(exc.diagnostics, exc.sources), err=True, nl=False)
        return EXIT_INPUT_ERROR
    except SolverTimeout as exc:
        click.echo(f"error[solver-timeout]: the solver gave up ({exc}); no answer is given", err=True)
        return EXIT_SOLVER_GAVE_UP
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except RecursionError:
        click.echo("error[too-deep]: the input is nested too deeply to process", err=True)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug of ours: say so plainly, without a traceback
        click.echo(f"internal error: {type(exc).__name__}: {exc}\nplease report this with the input files",
                   err=True)
        return EXIT_INTERNAL


if __name__ == "__main__":
    main()
