"""eligib: clinical-trial eligibility criteria that a machine can check, prove and explain.

The public API (documented in eligib.api), importable from here:

    from eligib import Engine
    engine = Engine.from_file("protocols/cd7_car_t.elig")
    result = engine.check("protocols/examples/ineligible-alt.json")

Names are loaded on first use, so `import eligib` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eligib.version import __version__

__all__ = ["Budget", "CheckedProtocol", "CriterionFinding", "Diagnostic", "DiagnosticError", "EligibError", "Engine",
           "Explanation", "Finding", "MissingFact", "PathFinding", "PathStatus", "Severity", "SolverTimeout", "Status",
           "Verdict", "__version__", "diff", "example", "load", "output_schema", "patient_schema", "run_case_files",
           "verify"]
_PUBLIC = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from eligib.api import (
        Budget,
        CheckedProtocol,
        CriterionFinding,
        Diagnostic,
        DiagnosticError,
        EligibError,
        Engine,
        Explanation,
        Finding,
        MissingFact,
        PathFinding,
        PathStatus,
        Severity,
        SolverTimeout,
        Status,
        Verdict,
        diff,
        example,
        load,
        output_schema,
        patient_schema,
        run_case_files,
        verify,
    )


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        from eligib import api

        return getattr(api, name)
    raise AttributeError(f"module 'eligib' has no attribute {name!r}")
