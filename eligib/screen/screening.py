"""Screen a table of patients against a protocol: SQL (DuckDB) decides the rows Kleene logic settles,
the engine checks the rest, and every patient's result equals `eligib check` on that patient.

A row is settled in SQL only when SQL holds everything the row says (every cell, and every cell of its
history items, in the plain form SQL reads exactly; no history longer than its bound), every criterion
is TRUE or FALSE, every assumption TRUE, and, for an
eligible patient, every path the explanation reports is known. Such a row's verdict and blocking
criteria are those of the engine's own fast path, which reports no missing fact. Every other row,
bad cells included, is read by the engine as a patient file would be: its errors are reported per
column, its verdict comes with the decisive missing facts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eligib.engine import Engine
from eligib.language.diagnostics import DiagnosticError, error
from eligib.screen.attrition import Attrition, attrition
from eligib.screen.records import is_records_folder, screen_records
from eligib.screen.residue import BATCH, RESULT_COLUMNS, PatientResult, Progress, check_residue
from eligib.screen.sql import CompiledSql, compile_protocol
from eligib.screen.tables import (
    DataSource,
    cell_text,
    check_columns,
    discover,
    first_line,
    load_cells,
    scratch_folder,
    table_error,
)
from eligib.screen.typed import typed_tables
from eligib.values.types import ListType


class Screening:
    """A finished screen: the results table in DuckDB (closed with the object), and how many rows each
    part decided."""

    def __init__(self, engine: Engine, connection: Any, scratch: Any, rows: int, in_sql: int,
                 orphans: dict[str, int]) -> None:
        self.engine, self.connection, self._scratch = engine, connection, scratch
        self.rows, self.decided_in_sql, self.orphans = rows, in_sql, orphans

    def __enter__(self) -> Screening:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()
        self._scratch.cleanup()

    def attrition(self) -> Attrition:
        """Patients remaining after each criterion, verdict counts, the most frequent missing facts."""
        return attrition(self.connection, self.engine.checked, self.decided_in_sql, self.orphans)

    def results(self) -> Iterator[PatientResult]:
        """Every patient's result, in table order."""
        cursor = self.connection.execute("SELECT * FROM results ORDER BY row")
        while chunk := cursor.fetchmany(BATCH):
            for row in chunk:
                yield PatientResult(row[0], row[1], row[2], list(row[3]), list(row[4]), list(row[5]), list(row[6]))

    def relation(self) -> Any:
        """The results as a DuckDB relation (`.to_arrow_table()`, `.df()`, `.pl()` for notebooks)."""
        return self.connection.sql("SELECT id, verdict, blocking, missing_facts, paths, errors FROM results "
                                   "ORDER BY row")

    def arrow(self) -> Any:
        """The results as a pyarrow Table (needs pyarrow)."""
        return self.relation().to_arrow_table()

    def write(self, path: str) -> None:
        """Write the results as Parquet, CSV or JSON Lines, chosen by the file's suffix."""
        suffix = Path(path).suffix.lower()
        target = str(Path(path).absolute()).replace("'", "''")  # absolute: DuckDB would expand a leading `~`
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
        import duckdb

        try:
            self.connection.execute(f"COPY ({query}) TO '{target}' ({options})")
        except duckdb.Error as exc:  # a folder, a missing folder, no permission
            raise DiagnosticError([error("io", f"cannot write the results to `{path}`: {first_line(exc)}", None,
                                         help="give a file path in a folder you can write to")]) from None


def screen(engine: Engine, source: DataSource, workers: int | None = None, progress: Progress | None = None,
           at: str | None = None) -> Screening:
    """Screen every patient of `source`; `workers` processes check the rows SQL leaves open (default:
    one per core when there are many). A protocol with time points is judged as `eligib check` judges:
    at `at`, by default the first time point (`final`: every criterion)."""
    point = engine.timepoint(at)
    if point is not None:
        engine.at(point)  # an unknown time point: a clean error now, not one per row
    import duckdb

    connection = duckdb.connect()
    scratch = scratch_folder()
    try:
        if is_records_folder(source.path):
            if source.histories or source.table:
                raise table_error(source.path, "a folder of FHIR records has no child tables and no tables",
                                  "leave out --history and --table")
            found = screen_records(engine, source.path, list(source.facts), source.facts_file, workers, progress, point)
            return _from_results(engine, connection, scratch, found)
        rows, in_sql, orphans = _screen(engine, source, connection, Path(scratch.name), workers, progress, point)
    except BaseException:
        connection.close()
        scratch.cleanup()
        raise
    return Screening(engine, connection, scratch, rows, in_sql, orphans)


def _from_results(engine: Engine, connection: Any, scratch: Any, found: list[PatientResult]) -> Screening:
    """A screen whose results were made outside SQL (FHIR records): the same results table."""
    connection.execute(f"CREATE TABLE results ({RESULT_COLUMNS})")
    if found:
        rows = [(r.row, r.id, r.verdict, r.blocking, r.missing_facts, r.paths, r.errors) for r in found]
        connection.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return Screening(engine, connection, scratch, len(found), 0, {})


def _screen(engine: Engine, source: DataSource, connection: Any, scratch: Path, workers: int | None,
            progress: Progress | None, point: str | None) -> tuple[int, int, dict[str, int]]:
    checked = engine.checked
    refuse_id_facts(checked)
    source = discover(checked, source)
    columns = load_cells(connection, source, "cells", scratch)
    check_columns(checked, columns, source.path)
    given = given_cells(engine, source, columns)
    views = _load_histories(engine, source, connection, scratch)
    constants = "".join(f", {_literal(text)} AS \"{name}\"" for name, text in given.items())
    connection.execute(f'CREATE TABLE numbered AS SELECT row_number() OVER () AS "#row", *{constants} FROM cells')
    columns += list(given)
    rows, in_sql = decide(engine, connection, columns, views, scratch, workers, progress, point)
    return rows, in_sql, _orphans(connection, views)


def given_cells(engine: Engine, source: DataSource, columns: list[str]) -> dict[str, str | None]:
    """The facts given to every patient (`--fact`, `--facts`) as cells; refused for a column the table has."""
    if not source.facts and source.facts_file is None:
        return {}
    given = engine.given(list(source.facts), source.facts_file)
    cells: dict[str, str | None] = {}
    for name, fact in given.items():
        if name in columns:
            raise table_error(source.path, f"`{name}` is a column of the table and a given fact",
                              f"give `{name}` in one place", name)
        if isinstance(engine.checked.facts[name].type, ListType):
            raise table_error(source.path, f"`{name}` is a history: give it in a child table",
                              "see docs/screening.md#histories")
        cells[name] = cell_text(fact.raw)
    return cells


def _literal(text: str | None) -> str:
    return "CAST(NULL AS VARCHAR)" if text is None else "'" + text.replace("'", "''") + "'"


def decide(engine: Engine, connection: Any, columns: list[str], views: dict[str, str], scratch: Path,
           workers: int | None, progress: Progress | None, point: str | None) -> tuple[int, int]:
    """Fill `results` from `numbered` (the cells with row numbers) and each history's child table in
    `views`: SQL settles what it can, the engine checks the rest. (rows, rows decided in SQL)."""
    fact_columns, histories = typed_tables(engine.checked, connection, columns, views)
    compiled = compile_protocol(engine.checked, fact_columns, histories)
    connection.execute(f"CREATE TABLE results ({RESULT_COLUMNS})")
    _evaluate(connection, compiled)
    if point is None:  # judged at a time point, a row may be pending: the engine judges every row (for now)
        connection.execute(f"INSERT INTO results {_settled_query(compiled)}")
    in_sql = connection.execute("SELECT count(*) FROM results").fetchall()[0][0]
    rows = connection.execute("SELECT count(*) FROM evaluated").fetchall()[0][0]
    check_residue(engine, connection, columns, views, scratch, workers, progress, rows - in_sql, point)
    return rows, in_sql


def _orphans(connection: Any, views: dict[str, str]) -> dict[str, int]:
    """History -> how many of its child rows name no patient of the table."""
    found: dict[str, int] = {}
    for name, view in views.items():
        orphans = connection.execute(f'SELECT count(*) FROM "{view}" WHERE id IS NULL OR id NOT IN '
                                     "(SELECT id FROM typed WHERE id IS NOT NULL)").fetchall()[0][0]
        if orphans:
            found[name] = orphans
    return found


def refuse_id_facts(checked: Any) -> None:
    """A fact or history field named `id` cannot be told from the column that names the patient."""
    for name, info in checked.facts.items():
        fields = [f.name for f in getattr(info.type, "fields", ())]
        if name == "id" or "id" in fields:
            where = f"`{name}`" if name == "id" else f"the field `id` of `{name}`"
            raise table_error(checked.source.path, f"{where}: a fact or history field named `id` cannot be "
                              "screened", "the `id` column names the patient; rename the fact in the protocol")


def _load_histories(engine: Engine, source: DataSource, connection: Any, scratch: Path) -> dict[str, str]:
    """Each history's child table, as a view of cells (by history), its columns checked."""
    views: dict[str, str] = {}
    for index, (name, path) in enumerate(sorted(source.histories.items())):
        history_type = history_of(engine, name, path)
        view = f"child_{index}"
        columns = load_cells(connection, DataSource(path), view, scratch)
        check_child_columns(history_type, name, columns, path)
        views[name] = view
    return views


def _evaluate(connection: Any, compiled: CompiledSql) -> None:
    """`evaluated`: per row, each criterion's passes (`p<i>`), each assumption (`a<j>`), each path (`q<k>`),
    computed once each (a history's subqueries run once per column, not once per mention)."""
    columns = [f"{c.sql} AS p{i}" for i, c in enumerate(compiled.passes.values())]
    columns += [f"{c.sql} AS a{j}" for j, c in enumerate(compiled.assumptions)]
    columns += [f"{c.sql} AS q{k}" for k, c in enumerate(compiled.paths.values())]
    joins = ""
    for name, table in compiled.side_tables.items():
        connection.execute(f"CREATE TABLE {name} AS {table}")
        joins += f' LEFT JOIN {name} USING ("#row")'
    connection.execute(f'CREATE TABLE evaluated AS SELECT "#row", typed.id AS id, typed.plain AS plain'
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
    return (f"SELECT \"#row\", id, CASE WHEN {eligible} THEN 'eligible' ELSE 'ineligible' END, "
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


def history_of(engine: Engine, name: str, path: str) -> ListType:
    history = engine.checked.facts.get(name)
    if history is None or not isinstance(history.type, ListType):
        raise table_error(path, f"`{name}` is not a history of the protocol", "name a declared history fact")
    return history.type


def check_child_columns(history: ListType, name: str, columns: list[str], path: str) -> None:
    """A child table has `id` and only the history's fields."""
    fields = {f.name for f in history.fields}
    if "id" not in columns:
        raise table_error(path, "no `id` column", "each item row names its patient: id,field,...")
    for column in columns:
        if column != "id" and column not in fields:
            raise table_error(path, f"`{column[:60]}` is not a field of `{name}`",
                              f"fields: {', '.join(sorted(fields))}", column)
