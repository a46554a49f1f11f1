"""Generated populations for screening tests: each patient as a patient file states it (the expected
result comes from `eligib check` on that) and as table cells (what `eligib screen` reads).

Values lean on the boundaries: every threshold of the protocol with the values just beside it, the
declared bounds, month-end dates around the patient's own dates. Cells vary in form: a bare number in
the declared unit (SQL reads it), a number with its unit (the engine reads it), `none`, and a share of
bad cells (an unknown name, a value out of range, text that is no value) that must come back as errors.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from eligib.inputs.facts import patient_from_mapping
from eligib.language.checked import CheckedProtocol
from eligib.language.diagnostics import DiagnosticError
from eligib.logic.kleene import KleeneProgram
from eligib.logic.samples import _constants, _fixed_candidates
from eligib.values.numbers import format_decimal
from eligib.values.types import NONE, BoolType, DateTimeType, DateType, EnumType, History, ListType, NumType
from eligib.values.types.timestamp import format_instant

MONTH_ENDS = [dt.date(2026, m, 1) - dt.timedelta(days=1) for m in range(2, 13)] + [dt.date(2024, 2, 29)]


class Population:
    def __init__(self, checked: CheckedProtocol, seed: int, missing: float = 0.05, bad: float = 0.01,
                 base: tuple[dict[str, Any], dict[str, str], dict[str, list[dict[str, str]]]] | None = None,
                 changed: int = 3) -> None:
        """`base`: a patient (as `patient` returns it) each draw starts from, changing about `changed` facts
        at random (near an eligible patient, most verdicts are close calls)."""
        self.checked, self.random = checked, random.Random(seed)
        self.missing, self.bad = missing, bad
        self.base, self.changed = base, changed
        self.candidates = _fixed_candidates(checked)
        self.constants = _constants(checked)

    def patient(self) -> tuple[dict[str, Any], dict[str, str], dict[str, list[dict[str, str]]]]:
        """(patient file mapping, main-table cells, history items as cells); a patient whose values contradict
        an assumption is drawn again (a few times), so that most rows get a verdict."""
        for _ in range(20):
            drawn = self._draw()
            if self._possible(drawn[0]):
                break
        return drawn

    def _possible(self, facts: dict[str, Any]) -> bool:
        try:
            values = patient_from_mapping(self.checked, facts).values
        except DiagnosticError:
            return True  # a bad cell: kept, its row must come back as an error
        program = KleeneProgram.of(self.checked)
        return all(closure(values, None) is not False for _, closure in program.assumptions)

    def _draw(self) -> tuple[dict[str, Any], dict[str, str], dict[str, list[dict[str, str]]]]:
        anchor = dt.date(2026, 11, 20) + dt.timedelta(days=self.random.randint(-40, 40))
        facts: dict[str, Any] = {}
        cells: dict[str, str] = {}
        items: dict[str, list[dict[str, str]]] = {}
        redraw = set(self.random.sample(list(self.checked.facts), self.random.randint(0, self.changed))) \
            if self.base is not None else set(self.checked.facts)
        for name, info in self.checked.facts.items():
            if self.random.random() < self.missing:
                continue
            if name not in redraw and self.base is not None:
                if name in self.base[1]:
                    facts[name], cells[name] = self.base[0][name], self.base[1][name]
                    if name in self.base[2]:
                        items[name] = self.base[2][name]
                continue
            kind = info.type
            if isinstance(kind, ListType):
                listed = [self._item(kind, anchor) for _ in range(self.random.randint(0, 3))]
                facts[name] = [{k: v for k, (v, _) in item.items()} for item in listed]
                items[name] = [{k: c for k, (_, c) in item.items()} for item in listed]
                cells[name] = "complete"
                continue
            if self.random.random() < self.bad:
                cells[name] = self.random.choice(["not a value", "12 parsecs", "none", "-1e9", "2026-02-30"])
                facts[name] = cells[name]
                continue
            value, cell = self._value(info, kind, anchor)
            facts[name], cells[name] = value, cell
        return facts, cells, items

    def _item(self, kind: ListType, anchor: dt.date) -> dict[str, tuple[Any, str]]:
        return {field.name: self._value(field, field.type, anchor) for field in kind.fields}

    def _value(self, info: Any, kind: Any, anchor: dt.date) -> tuple[Any, str]:
        """(value as a patient file writes it, as a table cell)."""
        if info.optional and self.random.random() < 0.1:
            return "none", "none"
        if isinstance(kind, DateType):
            day = self.random.choice([anchor + dt.timedelta(days=self.random.choice([0, -1, 1, -28, -29, -30, -31,
                                      -90, -182, -183, -365, -366, 30, 400])), self.random.choice(MONTH_ENDS)])
            return day.isoformat(), day.isoformat()
        if isinstance(kind, DateTimeType):
            day = anchor + dt.timedelta(days=self.random.choice([0, -1, 1, -7, -30, -100, -200]))
            text = f"{day.isoformat()}T{self.random.choice(['00:00:00Z', '12:30:00Z', '23:59:59+02:00'])}"
            return text, text
        if isinstance(kind, BoolType):
            value = self.random.random() < 0.5
            return value, "true" if value else "false"
        if isinstance(kind, EnumType):
            value = self.random.choice(kind.values)
            return value, value
        if isinstance(kind, NumType):
            pool = [v for v in self.candidates.get(info.name, []) if v is not NONE and not isinstance(v, History)] \
                if info.name in self.checked.facts else list(kind.candidates(info, self.constants.get(
                    kind.constant_key, []), []))
            canonical = Fraction(self.random.choice(pool)) if pool else Fraction(self.random.randint(0, 100))
            declared = canonical / kind.factor
            text = format_decimal(declared, max_places=12)
            if text.startswith("~") or len(text.replace("-", "").replace(".", "")) > 30:
                return f"{Fraction(canonical)}", "not a value"  # no exact decimal: stands for a bad cell
            if kind.unit is not None and self.random.random() < 0.02:
                return f"{text} {kind.unit}", f"{text} {kind.unit}"
            return Decimal(text), text
        raise AssertionError(f"no generator for {kind}")


def write_table(folder: Path, rows: list[tuple[str, dict[str, str], dict[str, list[dict[str, str]]]]],
                checked: CheckedProtocol) -> tuple[Path, dict[str, str]]:
    """The main CSV table and one child CSV per history: (main path, history -> child path)."""
    names = list(checked.facts)
    main = folder / "patients.csv"
    with main.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *names])
        for patient_id, cells, _ in rows:
            writer.writerow([patient_id, *(cells.get(n, "") for n in names)])
    children: dict[str, str] = {}
    for name, info in checked.facts.items():
        if not isinstance(info.type, ListType):
            continue
        fields = [f.name for f in info.type.fields]
        path = folder / f"patients.{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", *fields])
            for patient_id, _, items in rows:
                for item in items.get(name, []):
                    writer.writerow([patient_id, *(item.get(f, "") for f in fields)])
        children[name] = str(path)
    return main, children


def row_of(checked: CheckedProtocol, facts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str],
                                                                    dict[str, list[dict[str, str]]]]:
    """A patient file's facts as a population row: (facts, cells, history items as cells)."""
    cells, items = cells_of(checked, patient_from_mapping(checked, facts).values)
    for name, cell in cells.items():
        if cell.startswith("~"):  # no exact decimal in the declared unit: the cell says it as written
            cells[name] = str(facts[name])
    return facts, cells, items


def cells_of(checked: CheckedProtocol,
             values: dict[str, Any]) -> tuple[dict[str, str], dict[str, list[dict[str, str]]]]:
    """Canonical values as table cells and history items (a number with no exact decimal starts with `~`)."""
    cells: dict[str, str] = {}
    items: dict[str, list[dict[str, str]]] = {}
    for name, value in values.items():
        kind = checked.facts[name].type
        if isinstance(kind, ListType):
            assert isinstance(value, History)
            cells[name] = "complete" if value.complete else "incomplete"
            items[name] = [{f.name: _cell(f.type, v) for f, v in zip(kind.fields, item, strict=True) if v is not None}
                           for item in value.items]
        else:
            cells[name] = _cell(kind, value)
    return cells, items


def _cell(kind: Any, value: Any) -> str:
    if value is NONE:
        return "none"
    if isinstance(kind, NumType):
        return format_decimal(Fraction(value) / kind.factor, max_places=12)
    if isinstance(kind, DateType):
        return dt.date.fromordinal(value).isoformat()
    if isinstance(kind, DateTimeType):
        return format_instant(value)
    if isinstance(kind, BoolType):
        return "true" if value else "false"
    return str(value)
