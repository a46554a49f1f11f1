"""The public API: everything a program (and the `eligib` command, a thin shell over this module)
needs, from one place. Names load on first use, so importing this module costs nothing; heavy parts
(Z3, FHIR models, Lark) load only when a call needs them.

    from eligib import Engine
    engine = Engine.from_file("protocols/cd7_car_t.elig")
    result = engine.check("protocols/examples/undetermined-missing-lvef.json")
    result.verdict, result.blocking, [m.name for m in result.missing_facts]
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eligib.limits import CHECK_SECONDS, VERIFY_QUERY_SECONDS, VERIFY_SECONDS

if TYPE_CHECKING:
    from eligib.analysis.diff import Difference
    from eligib.analysis.guidance import Guidance, guide
    from eligib.analysis.summary import RunInfo, run_info
    from eligib.engine import Engine
    from eligib.language.checked import CheckedProtocol
    from eligib.language.checker import load
    from eligib.language.diagnostics import (
        Diagnostic,
        DiagnosticError,
        EligibError,
        Finding,
        Severity,
        debugging,
        error,
    )
    from eligib.logic.budget import Budget, SolverTimeout
    from eligib.logic.evaluate import Verdict
    from eligib.logic.solver import Status
    from eligib.report.explanation import CriterionFinding, Explanation, MissingFact, PathFinding, PathStatus
    from eligib.report.html import to_html
    from eligib.report.render import (
        diagnostics_text,
        diff_data,
        diff_text,
        test_report,
        to_data,
        to_json,
        to_text,
        validate_data,
        verify_data,
        verify_text,
    )
    from eligib.report.sarif import sarif_log
    from eligib.screen.attrition import attrition_text
    from eligib.screen.funnel import plot_funnel
    from eligib.screen.screening import Screening
    from eligib.tools.cases import CaseResult

_HOMES = {
    "Engine": "eligib.engine", "CheckedProtocol": "eligib.language.checked", "load": "eligib.language.checker",
    **dict.fromkeys(["Diagnostic", "DiagnosticError", "EligibError", "Finding", "Severity", "debugging", "error"],
                    "eligib.language.diagnostics"),
    "Budget": "eligib.logic.budget", "SolverTimeout": "eligib.logic.budget", "Verdict": "eligib.logic.evaluate",
    "Status": "eligib.logic.solver", "attrition_text": "eligib.screen.attrition",
    "plot_funnel": "eligib.screen.funnel", "to_html": "eligib.report.html", "sarif_log": "eligib.report.sarif",
    **dict.fromkeys(["Guidance", "guide"], "eligib.analysis.guidance"),
    **dict.fromkeys(["RunInfo", "run_info"], "eligib.analysis.summary"),
    **dict.fromkeys(["CriterionFinding", "Explanation", "MissingFact", "PathFinding", "PathStatus"],
                    "eligib.report.explanation"),
    **dict.fromkeys(["diagnostics_text", "diff_data", "diff_text", "test_report", "to_data", "to_json", "to_text",
                     "validate_data", "verify_data", "verify_text"], "eligib.report.render"),
}

__all__ = ["CHECK_SECONDS", "VERIFY_QUERY_SECONDS", "VERIFY_SECONDS", "Budget", "CheckedProtocol",
           "CriterionFinding", "Diagnostic", "DiagnosticError", "EligibError", "Engine", "Explanation", "Finding",
           "Guidance", "MissingFact", "PathFinding", "PathStatus", "RunInfo", "Severity", "SolverTimeout", "Status",
           "Verdict", "attrition_text", "debugging", "diagnostics_text", "diff", "diff_data", "diff_text", "error",
           "example", "guide", "load", "output_schema", "patient_schema", "plot_funnel", "run_case_files",
           "run_info", "sarif_log", "screen", "test_report", "to_data", "to_html", "to_json", "to_text",
           "validate_data", "verify", "verify_data", "verify_text"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'eligib.api' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def verify(engine: Engine, budget: Budget | None = None) -> list[Finding]:
    """Every consistency finding about a protocol, each with a witness patient or a minimal core."""
    from eligib.analysis.verify import verify as prove

    return prove(engine, budget)


def example(engine: Engine, path: str | None = None, failing: tuple[str, ...] = (),
            budget: Budget | None = None) -> dict[str, Any]:
    """A patient file eligible through `path`, or ineligible exactly because of the `failing` criteria;
    NoSuchPatient (an EligibError) when there is none."""
    from eligib.analysis.verify import example as make

    return make(engine, path, failing, budget)


def diff(old: Engine, new: Engine, budget: Budget | None = None) -> Difference:
    """Two versions of a protocol: proven equivalent, or patients one admits and the other rejects."""
    from eligib.analysis.diff import diff as compare

    return compare(old, new, budget)


def run_case_files(engine: Engine, paths: list[str], timeout: float | None = CHECK_SECONDS,
                   root: str | None = None) -> list[CaseResult]:
    """Every case of every case file (docs/cli.md, `eligib test`), each passed or failed; the patient
    files cases name must lie under `root` (by default, each case file's folder)."""
    from eligib.tools.cases import run_files

    return run_files(engine, paths, timeout, root)


def screen(engine: Engine, data: str, histories: dict[str, str] | None = None, table: str | None = None,
           workers: int | None = None, progress: Callable[[int, int], None] | None = None,
           at: str | None = None, backend: str = "duckdb", master: str | None = None, spark: Any = None,
           facts: tuple[str, ...] = (), facts_file: str | None = None) -> Screening:
    """Screen every patient of a table (CSV, Parquet, JSON Lines, or `table` of a DuckDB file);
    `histories` names each history's child table (by default `<table>.<history>.<suffix>` beside it).
    `data` may be a folder of FHIR records: one bundle per patient, or a Bulk Data export (NDJSON).
    `facts` (`NAME=VALUE`) and `facts_file` give every patient facts the data lacks (`--fact`, `--facts`).
    `backend="spark"` runs it on Spark: on `spark` (a SparkSession) or a session of its own on `master`
    (default `local[*]`; needs eligib[spark]); `workers` and `progress` are DuckDB's.
    Use it as a context manager; `.results()`, `.relation()` (Arrow, pandas), `.write(path)`,
    `.attrition()` (docs/screening.md). A protocol with time points is judged at `at`, by default
    the first, as `eligib check` judges."""
    from eligib.screen.tables import DataSource

    source = DataSource(data, dict(histories or {}), table, tuple(facts), facts_file)
    if backend == "spark":
        from eligib.screen.spark import screen_spark

        return screen_spark(engine, source, master, at, spark)
    if backend != "duckdb":
        raise ValueError(f"backend {backend!r}: use 'duckdb' or 'spark'")
    from eligib.screen.screening import screen as run

    return run(engine, source, workers, progress, at)


def output_schema(command: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of `eligib COMMAND --format json`, for check, validate, verify and diff."""
    from eligib.schemas import output_schema as schema

    return schema(command)


def patient_schema(checked: CheckedProtocol) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the protocol's patient files."""
    from eligib.inputs.schema import patient_schema as schema

    return schema(checked)
