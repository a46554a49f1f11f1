"""Screen a folder of FHIR R4 data: one bundle per patient (`*.json`), or a Bulk Data export (`*.ndjson`,
one resource per line, each file one resource type), read through the protocol's `bindings:`.

Each patient's result is `eligib check` on that patient's record with the same given facts (`--fact`,
`--facts`): a bundle is read by the very reader check uses (eligib/inputs/fhir_reading.py), in worker
processes when there are many; a Bulk export is read line by line, keeping only the resources the
bindings can read, grouped by the patient they name (`subject` or `patient`: `Patient/<id>`), each
patient's then read as a bundle of them. A record that cannot be read is that patient's error, never
the run's. No SQL is involved: a record's facts are known only once it is read, and a general record
leaves most of a protocol's facts open, for the engine to judge. The results table is the same as a
table screen's, and so are the report and the results file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eligib.engine import Engine
from eligib.inputs.fhir_reading import Scanner, Wanted, check_resource_type, exact_json
from eligib.language.diagnostics import DiagnosticError
from eligib.language.source import SourceFile
from eligib.limits import MAX_BUNDLE_BYTES, MAX_SCREEN_ROWS
from eligib.logic.budget import SolverTimeout
from eligib.screen.residue import PatientResult, Progress, Workers
from eligib.screen.tables import table_error

BULK_REFERENCES = ("subject", "patient")  # where a resource names its patient in a Bulk Data export
# `Patient/<id>`, relative or absolute, with or without `/_history/<version>`: the patient is <id>
PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
BUNDLES_POOL_FROM = 10  # bundles from which worker processes read them (a real record takes ~0.3 s)
BUNDLES_PER_BATCH = 50


@dataclass
class BundleJob:
    """One patient's bundle file, checked as `eligib check FILE --fact ... --facts ...` would."""

    row: int
    bundle: str
    facts: list[str]
    facts_file: str | None
    at: str | None
    patient: str | None = None  # the patient's id, when the bundle was made for it (a Bulk export's)

    def record(self) -> dict[str, Any]:
        return {"row": self.row, "bundle": self.bundle, "facts": self.facts, "facts_file": self.facts_file,
                "at": self.at, "patient": self.patient}


def is_records_folder(path: str) -> bool:
    return Path(path).is_dir()


def screen_records(engine: Engine, folder: str, facts: list[str], facts_file: str | None, workers: int | None,
                   progress: Progress | None, at: str | None) -> list[PatientResult]:
    """Every patient of the folder, in file order (bundles) or in order of first appearance (Bulk)."""
    engine.given(facts, facts_file)  # a malformed option fails the run once, not every patient
    bundles = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".json" and p.is_file())
    exports = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".ndjson" and p.is_file())
    if bundles and exports:
        raise table_error(folder, "holds both bundles (.json) and a Bulk Data export (.ndjson)",
                          "keep one kind of FHIR data in the folder")
    if not bundles and not exports:
        raise table_error(folder, "holds no FHIR bundle (.json) and no Bulk Data export (.ndjson)",
                          "give a folder of patient bundles, or of NDJSON files")
    if len(bundles) > MAX_SCREEN_ROWS:
        raise table_error(folder, f"{len(bundles):,} bundles, more than {MAX_SCREEN_ROWS:,}", "split the folder")
    if bundles:
        jobs = [BundleJob(row, str(path), facts, facts_file, at) for row, path in enumerate(bundles, 1)]
        return _unique_ids(_check_bundles(engine, jobs, workers, progress))
    return _check_export(engine, exports, facts, facts_file, workers, at, progress)


def check_bundle(engine: Engine, job: BundleJob) -> PatientResult:
    """One bundle file: its patient's result, or its errors (the id: the Patient's, else the file's name)."""
    from eligib.inputs.facts import patient_from_bundle, patient_from_source
    from eligib.inputs.fhir_reading import read_bundle
    from eligib.language.reading import read_source

    patient_id = job.patient or Path(job.bundle).stem
    try:
        given = engine.given(job.facts, job.facts_file) if job.facts or job.facts_file else None
        source = read_source(job.bundle, "patient file", MAX_BUNDLE_BYTES)
        kept = read_bundle(source, Wanted.of(engine.checked))
        if kept is None:  # a facts file, or malformed: read (and reported) as check reads it
            patient = patient_from_source(engine.checked, source, given)
        else:
            patient_id = job.patient or _patient_id(kept.data) or patient_id
            patient = patient_from_bundle(engine.checked, kept.data, source, given or {}, kept.positions)
        return _result(engine, job.row, patient_id, patient, job.at)
    except DiagnosticError as exc:
        messages = _messages(exc)
        if job.patient is not None:  # not the made bundle's path: the export's lines are named instead
            messages = [m.replace(job.bundle, f"patient {job.patient}") for m in messages]
        return PatientResult(job.row, patient_id, "error", [], [], [], messages)


def _patient_id(bundle: dict[str, Any]) -> str | None:
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient" and resource.get("id"):
            return str(resource["id"])
    return None


def _result(engine: Engine, row: int, patient_id: str, patient: Any, at: str | None) -> PatientResult:
    try:
        explanation = engine.check(patient, at=at)
    except SolverTimeout as exc:
        return PatientResult(row, patient_id, "error", [], [], [], [f"the solver ran out of time: {exc}"])
    return PatientResult(row, patient_id, str(explanation.verdict), list(explanation.blocking),
                         [m.name for m in explanation.missing_facts], list(explanation.holding_paths), [])


def _messages(exc: DiagnosticError) -> list[str]:
    return [(f"{d.span.file}:{d.span.line}:{d.span.column}: " if d.span else "") + d.message +
            (f" ({d.help})" if d.help else "") for d in exc.found]


def _check_bundles(engine: Engine, jobs: list[BundleJob], workers: int | None,
                   progress: Progress | None) -> list[PatientResult]:
    wanted = workers if workers is not None else (os.cpu_count() or 1) if len(jobs) >= BUNDLES_POOL_FROM else 1
    path = engine.checked.source.path
    pool = Workers(path, min(wanted, len(jobs))) if wanted > 1 and Path(path).is_file() else None
    results: list[PatientResult] = []
    try:
        for start in range(0, len(jobs), BUNDLES_PER_BATCH):
            batch = jobs[start:start + BUNDLES_PER_BATCH]
            if pool is not None:
                results += [PatientResult(**record) for record in pool.check(batch)]
            else:
                results += [check_bundle(engine, job) for job in batch]
            if progress is not None:
                progress(len(results), len(jobs))
    finally:
        if pool is not None:
            pool.close()
    return results


def _check_export(engine: Engine, files: list[Path], facts: list[str], facts_file: str | None, workers: int | None,
                  at: str | None, progress: Progress | None) -> list[PatientResult]:
    """A Bulk Data export: the kept lines grouped by patient, each patient's written as a bundle of them
    (their text unchanged) and checked as a folder's bundles are, in worker processes when many."""
    wanted = Wanted.of(engine.checked)
    patients: dict[str, list[tuple[str, str]]] = {}
    problems: dict[str, list[str]] = {}
    for path in files:
        for patient_id, origin, line in _export_resources(path, wanted, problems):
            patients.setdefault(patient_id, []).append((origin, line))
    for patient_id in problems:  # a patient whose every line is refused still has its (error) row
        patients.setdefault(patient_id, [])
    with tempfile.TemporaryDirectory(prefix="eligib-export-") as scratch:
        jobs, failed = [], []
        for row, (patient_id, lines) in enumerate(patients.items(), 1):
            if patient_id in problems:
                failed.append(PatientResult(row, patient_id, "error", [], [], [], problems[patient_id]))
                continue
            bundle = Path(scratch) / f"{row}.json"
            bundle.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [' +
                              ", ".join('{"resource": ' + line + "}" for _, line in lines) + "]}", encoding="utf-8")
            jobs.append(BundleJob(row, str(bundle), facts, facts_file, at, patient_id))
        found = _check_bundles(engine, jobs, workers, progress)
    for result in found:  # a resource's problem is said of its line in the export
        origins = [origin for origin, _ in patients[result.id]]
        result.errors = [_located(message, origins) for message in result.errors]
    return sorted(found + failed, key=lambda result: result.row)


def _located(message: str, origins: list[str]) -> str:
    """A validation message about `entry.N.resource` of a patient's bundle, said of the export's line."""
    found = re.search(r"entry\.(\d+)\.resource\.?", message)
    if found is None or int(found[1]) >= len(origins):
        return message
    return f"{origins[int(found[1])]}: " + message.replace(found[0], "", 1)


def _export_resources(path: Path, wanted: Wanted,
                      problems: dict[str, list[str]]) -> Iterator[tuple[str, str, str]]:
    """(patient id, file:line, the line) for each kept line of one NDJSON file; a Patient names itself.
    A line that is no JSON, or names no patient, fails the run with its line (the export is broken)."""
    if path.stat().st_size > MAX_BUNDLE_BYTES * 64:
        raise table_error(str(path), f"larger than {MAX_BUNDLE_BYTES * 64:,} bytes", "split the export")
    with path.open(encoding="utf-8-sig", newline="\n") as handle:  # lines end at line feeds only
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            source = SourceFile(f"{path}:{number}", line)
            scanner = Scanner()
            try:
                resource = scanner.decoder.decode(line)
            except RecursionError:
                raise table_error(f"{path}:{number}", "nested too deeply", "see docs/limits.md") from None
            except (json.JSONDecodeError, ValueError) as exc:
                raise table_error(f"{path}:{number}", f"not JSON: {getattr(exc, 'msg', exc)}",
                                  "write one FHIR resource per line") from None
            owner = _owner(resource)
            if owner is None:
                raise table_error(f"{path}:{number}", "a resource that names no patient (`subject` or `patient`: "
                                  "`Patient/<id>`)", "a Bulk Data export holds the resources of its patients")
            try:
                if scanner.twice is not None:  # the decoder's last-wins view could hide what a binding reads
                    exact_json(source, 0, "the resource")
                check_resource_type(resource, "the resource")
                if wanted.keeps(resource):  # a Patient always: each patient has a row
                    exact_json(source, 0, "the resource", depth=2)  # no key twice, nesting within limits
                    yield owner, f"{path.name}:{number}", line.strip()
            except DiagnosticError as exc:
                problems.setdefault(owner, []).extend(f"{path.name}:{number}: {m}" for m in _messages(exc))


def _owner(resource: Any) -> str | None:
    if not isinstance(resource, dict):
        return None
    if resource.get("resourceType") == "Patient":
        return str(resource["id"]) if resource.get("id") is not None else None
    for element in BULK_REFERENCES:
        reference = resource.get(element)
        target = reference.get("reference") if isinstance(reference, dict) else None
        found = PATIENT_REFERENCE.search(target) if isinstance(target, str) else None
        if found is not None:
            return found[1]
    return None


def _unique_ids(results: list[PatientResult]) -> list[PatientResult]:
    """A patient id twice (two bundles of one Patient): the later ones are errors, never merged."""
    seen: dict[str, int] = {}
    for result in results:
        if result.id in seen:
            result.verdict, result.blocking, result.missing_facts, result.paths = "error", [], [], []
            result.errors = [f"patient id `{result.id}` also in row {seen[result.id]}: one record per patient"]
        else:
            seen[result.id] = result.row
    return results
