"""The library API: load a protocol once, check many patients. The CLI is a thin shell over this.

An Engine may be shared between threads: each thread that needs the solver gets its own Z3
compilation of the protocol (Z3 contexts are not safe to share), built on that thread's first
need and reused for its later checks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from eligib.language.checker import CheckedProtocol, load, load_text
from eligib.report.explain import Explanation, explain
from eligib.inputs.facts import Patient, load_patient, patient_from_mapping
from eligib.logic.solver import CHECK_SECONDS, Budget, Decision, decide


@dataclass
class Engine:
    """A checked protocol plus its Z3 compilation (one per thread), built on first need and reused."""

    checked: CheckedProtocol
    _per_thread: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    @classmethod
    def from_file(cls, path: str) -> Engine:
        return cls(load(path))

    @classmethod
    def from_text(cls, text: str, path: str = "<protocol>") -> Engine:
        return cls(load_text(text, path))

    def compiled(self) -> Any:
        """This thread's Z3 compilation of the protocol (imports z3: only when a fact is missing)."""
        compiled = getattr(self._per_thread, "compiled", None)
        if compiled is None:
            from eligib.logic.compiler import compile_protocol

            compiled = self._per_thread.compiled = compile_protocol(self.checked)
        return compiled

    def patient(self, source: str | dict[str, Any]) -> Patient:
        """A validated patient from a file path (`-` for stdin) or a mapping of fact values."""
        if isinstance(source, dict):
            return patient_from_mapping(self.checked, source)
        return load_patient(self.checked, source)

    def decide(self, patient: Patient, timeout: float | None = CHECK_SECONDS) -> Decision:
        """The verdict; `timeout` seconds bound the solver in all (SolverTimeout: no verdict)."""
        return decide(self.checked, patient.values, self.compiled, Budget(timeout))

    def check(self, source: str | dict[str, Any] | Patient, timeout: float | None = CHECK_SECONDS) -> Explanation:
        """Verdict and full explanation for one patient, within `timeout` seconds of solver time."""
        patient = source if isinstance(source, Patient) else self.patient(source)
        decision = self.decide(patient, timeout)
        return explain(self.checked, decision, patient.path, patient.warnings)
