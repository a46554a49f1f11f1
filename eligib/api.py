"""The library API: load a protocol once, check many patients. The CLI is a thin shell over this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eligib.checker import CheckedProtocol, load, load_text
from eligib.explain import Explanation, explain
from eligib.facts import Patient, load_patient, patient_from_mapping
from eligib.solver import Decision, decide


@dataclass
class Engine:
    """A checked protocol plus its Z3 compilation, built on first need and reused for every patient."""

    checked: CheckedProtocol
    _compiled: Any = field(default=None, repr=False)

    @classmethod
    def from_file(cls, path: str) -> Engine:
        return cls(load(path))

    @classmethod
    def from_text(cls, text: str, path: str = "<protocol>") -> Engine:
        return cls(load_text(text, path))

    def compiled(self):
        if self._compiled is None:
            from eligib.compiler import compile_protocol  # imports z3: only when a fact is missing

            self._compiled = compile_protocol(self.checked)
        return self._compiled

    def patient(self, source: str | dict[str, Any]) -> Patient:
        """A validated patient from a file path (`-` for stdin) or a mapping of fact values."""
        if isinstance(source, dict):
            return patient_from_mapping(self.checked, source)
        return load_patient(self.checked, source)

    def decide(self, patient: Patient) -> Decision:
        return decide(self.checked, patient.values, self.compiled)

    def check(self, source: str | dict[str, Any] | Patient) -> Explanation:
        """Verdict and full explanation for one patient."""
        patient = source if isinstance(source, Patient) else self.patient(source)
        decision = self.decide(patient)
        return explain(self.checked, decision, patient.path, patient.warnings)
