"""The rows SQL leaves open, checked by the engine as patient files with those values, in this process
or in worker processes (`python -m eligib.screen.residue PROTOCOL`) that read jobs and write results
as JSON lines: no pickle, and no re-import of the caller's main module (as multiprocessing's spawn
would do, running a user's script again in every worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from eligib.engine import Engine
from eligib.language.diagnostics import DiagnosticError
from eligib.logic.budget import SolverTimeout
from eligib.screen.tables import raw_facts

RESULT_COLUMNS = "row BIGINT, id VARCHAR, verdict VARCHAR, blocking VARCHAR[], missing_facts VARCHAR[], " \
                 "paths VARCHAR[], errors VARCHAR[]"
BATCH = 2_000  # open rows fetched and checked at a time
POOL_FROM = 400  # open rows from which checks run in worker processes
Progress = Callable[[int, int], None]  # (rows done, rows in all)
Items = dict[str, list[dict[str, str | None]]]  # history -> the patient's items as cells


class Recorded(Protocol):
    """A job a worker reads as one JSON line."""

    def record(self) -> dict[str, Any]: ...


@dataclass
class PatientResult:
    """One patient's result: as `eligib check` reports it, or the errors in its row (verdict `error`)."""

    row: int
    id: str
    verdict: str
    blocking: list[str]
    missing_facts: list[str]
    paths: list[str]
    errors: list[str]

    def record(self) -> dict[str, Any]:
        return {"row": self.row, "id": self.id, "verdict": self.verdict, "blocking": self.blocking,
                "missing_facts": self.missing_facts, "paths": self.paths, "errors": self.errors}


@dataclass
class Job:
    row: int
    cells: dict[str, str | None]
    items: Items
    child_tables: list[str]
    at: str | None = None  # the time point judged at, as `eligib check --at`

    def record(self) -> dict[str, Any]:
        return {"row": self.row, "cells": self.cells, "items": self.items, "child_tables": self.child_tables,
                "at": self.at}


def check_row(engine: Engine, job: Job) -> PatientResult:
    """One row, checked by the engine as a patient file with these values would be."""
    from eligib.inputs.facts import patient_from_mapping

    row, patient_id = job.row, str(job.cells.get("id") or "")
    if not patient_id:
        return PatientResult(row, "", "error", [], [], [], [f"row {row}: the `id` is empty"])
    raw, problems = raw_facts(engine.checked, job.cells, job.items, set(job.child_tables))
    if problems:
        return PatientResult(row, patient_id, "error", [], [], [], problems)
    try:
        explanation = engine.check(patient_from_mapping(engine.checked, raw, path=f"patient {patient_id}"), at=job.at)
    except DiagnosticError as exc:
        messages = [d.message + (f" ({d.help})" if d.help else "") for d in exc.found]
        return PatientResult(row, patient_id, "error", [], [], [], messages)
    except SolverTimeout as exc:
        return PatientResult(row, patient_id, "error", [], [], [], [f"the solver ran out of time: {exc}"])
    return PatientResult(row, patient_id, str(explanation.verdict), list(explanation.blocking),
                         [m.name for m in explanation.missing_facts], list(explanation.holding_paths), [])


class Workers:
    """Worker processes, each with the protocol loaded from its file, fed jobs as JSON lines."""

    def __init__(self, protocol: str, count: int) -> None:
        command = [sys.executable, "-m", "eligib.screen.residue", protocol]
        self.processes = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                           encoding="utf-8") for _ in range(count)]

    def check(self, jobs: Sequence[Recorded]) -> list[dict[str, Any]]:
        """The jobs' results, in order: a contiguous share to each worker, written by a thread while this
        one reads (so that neither pipe fills up and blocks the other side)."""
        size = -(-len(jobs) // len(self.processes))
        shares = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        writers = [threading.Thread(target=_feed, args=(process.stdin, share), daemon=True)
                   for process, share in zip(self.processes, shares, strict=False)]
        for writer in writers:
            writer.start()
        results: list[dict[str, Any]] = []
        for process, share in zip(self.processes, shares, strict=False):
            assert process.stdout is not None
            for _ in share:
                line = process.stdout.readline()
                if not line:
                    raise RuntimeError(f"a screening worker stopped (exit {process.wait()})")
                results.append(json.loads(line))
        for writer in writers:
            writer.join()
        return results

    def close(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _feed(stream: IO[str] | None, jobs: Sequence[Recorded]) -> None:
    assert stream is not None
    stream.write("".join(json.dumps(job.record()) + "\n" for job in jobs))
    stream.flush()


def check_residue(engine: Engine, connection: Any, columns: list[str], views: dict[str, str], scratch: Path,
                  workers: int | None, progress: Progress | None, count: int, at: str | None) -> None:
    """Check every row SQL left open; their results join the `results` table."""
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = connection.cursor()  # a cursor of its own: the items of each batch are read meanwhile
    cursor.execute(f'SELECT "#row", {names} FROM numbered WHERE "#row" NOT IN (SELECT row FROM results) '
                   'ORDER BY "#row"')
    pool = _workers(engine, workers, count)
    done = 0
    target = scratch / "residue.jsonl"
    try:
        with target.open("w", encoding="utf-8") as out:
            while chunk := cursor.fetchmany(BATCH):
                jobs = _jobs(connection, chunk, columns, views, at)
                records = pool.check(jobs) if pool is not None else [check_row(engine, job).record() for job in jobs]
                out.write("".join(json.dumps(record) + "\n" for record in records))
                done += len(jobs)
                if progress is not None:
                    progress(done, count)
    finally:
        cursor.close()
        if pool is not None:
            pool.close()
    if done:
        connection.execute(f"INSERT INTO results SELECT * FROM read_json('{target}', format='newline_delimited', "
                           "columns={row: 'BIGINT', id: 'VARCHAR', verdict: 'VARCHAR', blocking: 'VARCHAR[]', "
                           "missing_facts: 'VARCHAR[]', paths: 'VARCHAR[]', errors: 'VARCHAR[]'})")


def _jobs(connection: Any, chunk: list[tuple[Any, ...]], columns: list[str], views: dict[str, str],
          at: str | None) -> list[Job]:
    """The batch's rows with their items, read from the child tables for these patients only."""
    cells = [dict(zip(columns, row[1:], strict=True)) for row in chunk]
    ids = [str(c.get("id")) for c in cells if c.get("id") is not None]
    items: dict[str, dict[str, list[dict[str, str | None]]]] = {}
    for name, view in views.items():
        found = connection.execute(f'SELECT * FROM "{view}" WHERE id IN (SELECT unnest(?))', [ids])
        header = [d[0] for d in found.description]
        by_id = items[name] = {}
        for row in found.fetchall():
            item = dict(zip(header, row, strict=True))
            owner = item.pop("id")
            if owner is not None:  # an item naming no patient is counted in the report, never read
                by_id.setdefault(str(owner), []).append(item)
    return [Job(row[0], c, {name: items[name].get(str(c.get("id")), []) for name in views}, sorted(views), at)
            for row, c in zip(chunk, cells, strict=True)]


def _workers(engine: Engine, workers: int | None, count: int) -> Workers | None:
    """Worker processes for many open rows (or as many as asked); None: check in this process."""
    wanted = workers if workers is not None else (os.cpu_count() or 1) if count >= POOL_FROM else 1
    path = engine.checked.source.path
    if wanted <= 1 or count == 0 or not Path(path).is_file():
        return None
    return Workers(path, min(wanted, max(1, count)))


def main() -> None:
    """A worker: one job per line in, one result per line out."""
    engine = Engine.from_file(sys.argv[1], cache=True)
    for line in sys.stdin:
        job = json.loads(line)
        if "bundle" in job:  # a FHIR record of a folder (eligib/screen/records.py)
            from eligib.screen.records import BundleJob, check_bundle

            result = check_bundle(engine, BundleJob(**job))
        else:
            result = check_row(engine, Job(job["row"], job["cells"], job["items"], job["child_tables"], job["at"]))
        sys.stdout.write(json.dumps(result.record()) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
