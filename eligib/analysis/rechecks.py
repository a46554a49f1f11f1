"""Re-checking witnesses that differ from one eligible patient in a few facts.

Every witness `verify` reports is checked the way `eligib check` checks its facts file: the file's
entries read back as the witness's values, and the compiled three-valued program (what `decide` runs
for a complete patient) gives the claimed verdict, blocking criteria and path. Once `verify` is
grounded (parts.py), a witness is the eligible patient with one part's facts changed. Its checks
then cost what the change costs: a criterion or assumption that reads no changed fact has the
eligible patient's outcome, each file entry is written once per value and proven to read back as
that value, and only the changed criteria are evaluated again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eligib.analysis.witness import WitnessError, applicable
from eligib.inputs.facts import convert
from eligib.language.checked import CheckedProtocol
from eligib.logic.kleene import KleeneProgram
from eligib.values.types import NONE, Value, ValueProblem


class Rechecks:
    """Checks of witnesses near one eligible patient (`base`: canonical values of every fact)."""

    def __init__(self, checked: CheckedProtocol, base: Mapping[str, Value]) -> None:
        self.checked = checked
        self.program = KleeneProgram.of(checked)
        self.entries: dict[tuple[str, Value], Any] = {}
        self.readers: dict[str, list[str]] = {}
        for cid, names in checked.criterion_facts.items():
            for name in names:
                self.readers.setdefault(name, []).append(cid)
        self.assumption_readers: dict[str, list[int]] = {}
        for index, (assumption, _) in enumerate(self.program.assumptions):
            for name in checked.facts_of(assumption.body):
                self.assumption_readers.setdefault(name, []).append(index)
        self.base = applicable(checked, dict(base))
        self.outcomes = self.program.outcomes(self.base)
        assert all(passes is True for _, passes in self.outcomes.values()), "the base patient must be eligible"

    def file(self, values: Mapping[str, Value]) -> tuple[dict[str, Any], dict[str, Value]]:
        """The witness as a facts file, and the values that file reads back as (facts outside their
        subgroup left out)."""
        kept = applicable(self.checked, dict(values))
        return {name: self.entry(name, value) for name, value in kept.items()}, kept

    def entry(self, name: str, value: Value) -> Any:
        """One fact's file entry, written once per value and proven to read back as that value."""
        key = (name, value)
        found = self.entries.get(key)
        if found is None:
            info = self.checked.facts[name]
            try:
                found = "none" if value is NONE else info.type.to_file(value)
            except ValueError as exc:
                raise WitnessError(f"`{name}` would need {exc}") from None
            try:
                read = convert(info, found)
            except ValueProblem:
                read = None
            if read != value:
                raise AssertionError(f"witness entry for `{name}` does not read back as its value")
            self.entries[key] = found
        return found

    def outcome(self, values: Mapping[str, Value]) -> tuple[str, list[str]]:
        """The verdict ("eligible", "ineligible" or "undetermined") and blocking criteria of a complete
        patient: only the criteria and assumptions reading a fact that differs from the base are evaluated."""
        changed = {name for name in values.keys() | self.base.keys() if values.get(name) != self.base.get(name)}
        assumptions = {index for name in changed for index in self.assumption_readers.get(name, ())}
        if any(self.program.assumptions[index][1](values, None) is not True for index in assumptions):
            return "undetermined", []  # a broken assumption: `eligib check` refuses the patient
        again = {cid for name in changed for cid in self.readers.get(name, ())}
        outcomes = {cid: self.program.outcome(cid)(values) if cid in again else outcome
                    for cid, outcome in self.outcomes.items()}
        if any(passes is None for _, passes in outcomes.values()):
            return "undetermined", []
        blocking = [cid for cid, (_, passes) in outcomes.items() if passes is False]
        return ("ineligible" if blocking else "eligible"), blocking

    def path_holds(self, dotted: str, values: Mapping[str, Value]) -> bool:
        """Does the named path's condition hold for this complete patient (as `eligib check` reports it)?"""
        named = self.checked.path_index[dotted]
        return self.program.condition_of(named.item.body)(values, None) is True
