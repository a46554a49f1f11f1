"""Screen a table of patients against a protocol: SQL (DuckDB) decides the rows Kleene logic settles,
the engine checks the rest, and every patient's result equals `eligib check` on that patient.

A row is settled in SQL only when SQL holds everything the row says (every cell in the plain form
SQL reads exactly, no history), every criterion is TRUE or FALSE, every assumption TRUE, and, for an
eligible patient, every path the explanation reports is known. Such a row's verdict and blocking
criteria are those of the engine's own fast path, which reports no missing fact. Every other row,
bad cells included, is read by the engine as a patient file would be: its errors are reported per
column, its verdict comes with the decisive missing facts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eligib.engine import Engine
from eligib.language.diagnostics import DiagnosticError
from eligib.logic.budget import SolverTimeout
from eligib.screen.attrition import Attrition, attrition
from eligib.screen.sql import CompiledSql, compile_protocol
from eligib.screen.tables import DataSource, check_columns, discover, load_cells, raw_facts, scratch_folder, table_error
from eligib.screen.typed import typed_tables
from eligib.values.types import ListType

RESULT_COLUMNS = "row BIGINT, id VARCHAR, verdict VARCHAR, blocking VARCHAR[], missing_facts VARCHAR[], " \
                 "paths VARCHAR[], errors VARCHAR[]"
BATCH = 2_000  # residue rows fetched and checked at a time
POOL_FROM = 400  # residue rows from which checks run in worker processes
Progress = Callable[[int, int], None]  # (rows done, rows in all)


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


class Screening:
    """A finished screen: the results table in DuckDB (closed with the object), and how many rows each
    part decided."""

    def __init__(self, engine: Engine, connection: Any, scratch: Any, rows: int, in_sql: int) -> None:
        self.engine, self.connection, self._scratch = engine, connection, scratch
        self.rows, self.decided_in_sql = rows, in_sql

    def __enter__(self) -> Screening:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()
        self._scratch.cleanup()

    def attrition(self) -> Attrition:
        """Patients remaining after each criterion, verdict counts, the most frequent missing facts."""
        return attrition(self.connection, self.engine.checked, self.decided_in_sql)

    def results(self) -> Iterator[PatientResult]:
        """Every patient's result, in table order."""
        cursor = self.connection.execute("SELECT * FROM results ORDER BY row")
        while chunk := cursor.fetchmany(BATCH):
            for row in chunk:
                yield PatientResult(row[0], row[1], row[2], list(row[3]), list(row[4]), list(row[5]), list(row[6]))

    def relation(self) -> Any:
        """The results as a DuckDB relation (`.arrow()`, `.df()`, `.pl()` for notebooks)."""
        return self.connection.sql("SELECT id, verdict, blocking, missing_facts, paths, errors FROM results "
                                   "ORDER BY row")

    def arrow(self) -> Any:
        """The results as a pyarrow Table (needs pyarrow)."""
        return self.relation().to_arrow_table()

    def write(self, path: str) -> None:
        """Write the results as Parquet, CSV or JSON Lines, chosen by the file's suffix."""
        suffix = Path(path).suffix.lower()
        target = path.replace("'", "''")
        columns = "id, verdict, blocking, missing_facts, paths, errors"
        if suffix == ".parquet":
            query, options = f"SELECT {columns} FROM results ORDER BY row", "FORMAT parquet"
        elif suffix in (".jsonl", ".ndjson", ".json"):
            query, options = f"SELECT {columns} FROM results ORDER BY row", "FORMAT json"
        elif suffix == ".csv":
            query = ("SELECT id, verdict, array_to_string(blocking, ' ') AS blocking, array_to_string(missing_facts, "
                     "' ') AS missing_facts, array_to_string(paths, ' ') AS paths, array_to_string(errors, '; ') AS "
                     "errors FROM results ORDER BY row")
            options = "FORMAT csv, HEADER true"
        else:
            raise table_error(path, "unknown results format", "name the results file .parquet, .csv or .jsonl")
        self.connection.execute(f"COPY ({query}) TO '{target}' ({options})")


def screen(engine: Engine, source: DataSource, workers: int | None = None,
           progress: Progress | None = None) -> Screening:
    """Screen every patient of `source`; `workers` processes check the rows SQL leaves open (default:
    one per core when there are many)."""
    import duckdb

    connection = duckdb.connect()
    scratch = scratch_folder()
    try:
        rows, in_sql = _screen(engine, source, connection, Path(scratch.name), workers, progress)
    except BaseException:
        connection.close()
        scratch.cleanup()
        raise
    return Screening(engine, connection, scratch, rows, in_sql)


def _screen(engine: Engine, source: DataSource, connection: Any, scratch: Path, workers: int | None,
            progress: Progress | None) -> tuple[int, int]:
    checked = engine.checked
    source = discover(checked, source)
    columns = load_cells(connection, source, "cells", scratch)
    check_columns(checked, columns, source.path)
    items, views = _load_histories(engine, source, connection, scratch)
    fact_columns, histories = typed_tables(checked, connection, columns, views)
    compiled = compile_protocol(checked, fact_columns, histories)
    connection.execute(f"CREATE TEMP TABLE results ({RESULT_COLUMNS})")
    _evaluate(connection, compiled)
    connection.execute(f"INSERT INTO results {_settled_query(compiled)}")
    in_sql = connection.execute("SELECT count(*) FROM results").fetchall()[0][0]
    rows = connection.execute("SELECT count(*) FROM evaluated").fetchall()[0][0]
    _check_residue(engine, connection, columns, items, set(source.histories), scratch, workers, progress,
                   rows - in_sql)
    return rows, in_sql


def _load_histories(engine: Engine, source: DataSource, connection: Any,
                    scratch: Path) -> tuple[dict[str, dict[str, list[dict[str, str | None]]]], dict[str, str]]:
    """Each history's child table: its items as cells by patient id, and the view holding it."""
    found: dict[str, dict[str, list[dict[str, str | None]]]] = {}
    views: dict[str, str] = {}
    for index, (name, path) in enumerate(sorted(source.histories.items())):
        history = engine.checked.facts.get(name)
        if history is None or not isinstance(history.type, ListType):
            raise table_error(path, f"`{name}` is not a history of the protocol", "name a declared history fact")
        view = f"child_{index}"
        columns = load_cells(connection, DataSource(path), view, scratch)
        fields = {f.name for f in history.type.fields}
        if "id" not in columns:
            raise table_error(path, "no `id` column", "each item row names its patient: id,field,...")
        for column in columns:
            if column != "id" and column not in fields:
                raise table_error(path, f"`{column[:60]}` is not a field of `{name}`",
                                  f"fields: {', '.join(sorted(fields))}", column)
        by_id: dict[str, list[dict[str, str | None]]] = {}
        cursor = connection.execute(f'SELECT * FROM "{view}"')
        while chunk := cursor.fetchmany(BATCH):
            for row in chunk:
                cells = dict(zip(columns, row, strict=True))
                by_id.setdefault(str(cells.pop("id")), []).append(cells)
        found[name] = by_id
        views[name] = view
    return found, views


def _evaluate(connection: Any, compiled: CompiledSql) -> None:
    """`evaluated`: per row, each criterion's passes (`p<i>`), each assumption (`a<j>`), each path (`q<k>`),
    computed once each (a history's subqueries run once per column, not once per mention)."""
    columns = [f"{c.sql} AS p{i}" for i, c in enumerate(compiled.passes.values())]
    columns += [f"{c.sql} AS a{j}" for j, c in enumerate(compiled.assumptions)]
    columns += [f"{c.sql} AS q{k}" for k, c in enumerate(compiled.paths.values())]
    joins = ""
    for name, table in compiled.side_tables.items():
        connection.execute(f"CREATE TEMP TABLE {name} AS {table}")
        joins += f" LEFT JOIN {name} USING (row)"
    connection.execute(f"CREATE TEMP TABLE evaluated AS SELECT row, typed.id AS id, typed.plain AS plain"
                       f"{''.join(', ' + c for c in columns)} FROM typed{joins}")


def _settled_query(compiled: CompiledSql) -> str:
    """The rows SQL settles, with their results (over `evaluated`)."""
    passes = {cid: f"p{i}" for i, cid in enumerate(compiled.passes)}
    paths = {dotted: f"q{k}" for k, dotted in enumerate(compiled.paths)}
    known = [f"{p} IS NOT NULL" for p in passes.values()] + [f"a{j} IS TRUE" for j in range(len(compiled.assumptions))]
    eligible = " AND ".join(f"{p} IS TRUE" for p in passes.values()) or "TRUE"
    paths_known = " AND ".join(f"{paths[d]} IS NOT NULL" for d, c in compiled.paths.items() if not c.exact) or "TRUE"
    blocking = ", ".join(f"CASE WHEN {p} IS FALSE THEN '{cid}' END" for cid, p in passes.items()) or "NULL"
    holding = ", ".join(f"CASE WHEN {_deepest(paths, dotted)} THEN '{dotted}' END" for dotted in paths) or "NULL"
    settled = " AND ".join(["plain", *known]) + f" AND (NOT ({eligible}) OR ({paths_known}))"
    return (f"SELECT row, id, CASE WHEN {eligible} THEN 'eligible' ELSE 'ineligible' END, "
            f"CAST([x for x in [{blocking}] if x IS NOT NULL] AS VARCHAR[]), CAST([] AS VARCHAR[]), "
            f"CASE WHEN {eligible} THEN CAST([x for x in [{holding}] if x IS NOT NULL] AS VARCHAR[]) "
            f"ELSE CAST([] AS VARCHAR[]) END, CAST([] AS VARCHAR[]) FROM evaluated WHERE {settled}")


def _deepest(paths: dict[str, str], dotted: str) -> str:
    """A path is reported when it and every path above it hold and none of its own sub-paths does."""
    above = [paths[prefix] for prefix in _prefixes(dotted) if prefix in paths]
    below = [column for name, column in paths.items()
             if name.startswith(dotted + ".") and name.count(".") == dotted.count(".") + 1]
    holds = " AND ".join(f"{column} IS TRUE" for column in [*above, paths[dotted]])
    inner = " OR ".join(f"{column} IS TRUE" for column in below)
    return f"({holds}) AND NOT ({inner})" if inner else f"({holds})"


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def _check_residue(engine: Engine, connection: Any, columns: list[str],
                   items: dict[str, dict[str, list[dict[str, str | None]]]], child_tables: set[str], scratch: Path,
                   workers: int | None, progress: Progress | None, count: int) -> None:
    """Check with the engine every row SQL left open; their results join the table."""
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = connection.execute(f"SELECT row, {names} FROM numbered WHERE row NOT IN (SELECT row FROM results) "
                                "ORDER BY row")
    pool = _pool(engine, workers, count)
    done = 0
    target = scratch / "residue.jsonl"
    try:
        with target.open("w", encoding="utf-8") as out:
            while chunk := cursor.fetchmany(BATCH):
                jobs = [_job(row, columns, items) for row in chunk]
                parts = [jobs[i:i + 100] for i in range(0, len(jobs), 100)]
                results = pool.map(_check_rows, parts) if pool is not None else \
                    [_check_rows(part, engine) for part in parts]
                for part in results:
                    for result in part:
                        out.write(json.dumps(result.record()) + "\n")
                done += len(jobs)
                if progress is not None:
                    progress(done, count)
    finally:
        if pool is not None:
            pool.shutdown()
    if done:
        connection.execute(f"INSERT INTO results SELECT * FROM read_json('{target}', format='newline_delimited', "
                           "columns={row: 'BIGINT', id: 'VARCHAR', verdict: 'VARCHAR', blocking: 'VARCHAR[]', "
                           "missing_facts: 'VARCHAR[]', paths: 'VARCHAR[]', errors: 'VARCHAR[]'})")
    del child_tables


Job = tuple[int, dict[str, str | None], dict[str, list[dict[str, str | None]]], set[str]]


def _job(row: tuple[Any, ...], columns: list[str],
         items: dict[str, dict[str, list[dict[str, str | None]]]]) -> Job:
    cells = dict(zip(columns, row[1:], strict=True))
    patient_id = str(cells.get("id"))
    return row[0], cells, {name: by_id.get(patient_id, []) for name, by_id in items.items()}, set(items)


_WORKER_ENGINE: list[Engine] = []


def _pool(engine: Engine, workers: int | None, count: int) -> Any:
    """Worker processes for many open rows, each with the protocol loaded from its file; None: check here."""
    wanted = workers if workers is not None else (os.cpu_count() or 1) if count >= POOL_FROM else 1
    path = engine.checked.source.path
    if wanted <= 1 or not Path(path).is_file():
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(wanted, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(path,))


def _start_worker(path: str) -> None:
    _WORKER_ENGINE.append(Engine.from_file(path))


def _check_rows(jobs: list[Job], engine: Engine | None = None) -> list[PatientResult]:
    engine = engine if engine is not None else _WORKER_ENGINE[0]
    return [check_row(engine, *job) for job in jobs]


def check_row(engine: Engine, row: int, cells: dict[str, str | None], items: dict[str, list[dict[str, str | None]]],
              child_tables: set[str]) -> PatientResult:
    """One row, checked by the engine as a patient file with these values would be."""
    from eligib.inputs.facts import patient_from_mapping

    patient_id = str(cells.get("id") or "")
    if not patient_id:
        return PatientResult(row, "", "error", [], [], [], [f"row {row}: the `id` is empty"])
    raw, problems = raw_facts(engine.checked, cells, items, child_tables)
    if problems:
        return PatientResult(row, patient_id, "error", [], [], [], problems)
    try:
        explanation = engine.check(patient_from_mapping(engine.checked, raw, path=f"patient {patient_id}"))
    except DiagnosticError as exc:
        messages = [f"{d.message}" + (f" ({d.help})" if d.help else "") for d in exc.found]
        return PatientResult(row, patient_id, "error", [], [], [], messages)
    except SolverTimeout as exc:
        return PatientResult(row, patient_id, "error", [], [], [], [f"the solver ran out of time: {exc}"])
    return PatientResult(row, patient_id, str(explanation.verdict), list(explanation.blocking),
                         [m.name for m in explanation.missing_facts], list(explanation.holding_paths), [])
