"""SQL = the engine's Kleene program: on generated protocols (every construct, flat and with histories)
and partial patients, each criterion's, assumption's and path's column as DuckDB computes it
(eligib/screen/sql.py) equals the compiled three-valued program's value (logic/kleene.py) wherever
SQL reads the row, and an inexact column is never definite where the program is unknown."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import pytest
import test_generated
import test_histories_generated
from hypothesis import HealthCheck, given, settings, strategies as st
from population import cells_of

from eligib.logic.kleene import KleeneProgram
from eligib.screen.screening import _evaluate
from eligib.screen.sql import compile_protocol
from eligib.screen.tables import DataSource, load_cells
from eligib.screen.typed import typed_tables
from eligib.testing import partial_patients, values
from eligib.values.types import DateTimeType, ListType

PATIENTS = 3  # per generated protocol: one table
# half the profile's examples per generator (30 in CI, 1,000 in the deep profile): each builds a DuckDB table
SETTINGS = settings(suppress_health_check=list(HealthCheck), deadline=None,
                    max_examples=max(1, settings.default.max_examples // 2))


def sql_columns(engine: Any, rows: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """Each patient's `evaluated` row (plain, p<i>, a<j>, q<k>) from DuckDB."""
    checked = engine.checked
    folder.mkdir(parents=True, exist_ok=True)
    tables = [cells_of(checked, row) for row in rows]
    names = list(checked.facts)
    main = folder / "t.csv"
    with main.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *names])
        for index, (cells, _) in enumerate(tables):
            writer.writerow([f"p{index}", *(cells.get(n, "") for n in names)])
    children = {}
    for name, info in checked.facts.items():
        if isinstance(info.type, ListType):
            path = folder / f"t.{name}.csv"
            fields = [f.name for f in info.type.fields]
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", *fields])
                for index, (_, items) in enumerate(tables):
                    for item in items.get(name, []):
                        writer.writerow([f"p{index}", *(item.get(f, "") for f in fields)])
            children[name] = str(path)
    connection = duckdb.connect()
    try:
        columns = load_cells(connection, DataSource(str(main)), "cells", folder)
        views = {}
        for index, (name, path) in enumerate(sorted(children.items())):
            load_cells(connection, DataSource(path), f"child_{index}", folder)
            views[name] = f"child_{index}"
        connection.execute('CREATE TABLE numbered AS SELECT row_number() OVER () AS "#row", * FROM cells')
        fact_columns, histories = typed_tables(checked, connection, columns, views)
        compiled = compile_protocol(checked, fact_columns, histories)
        _evaluate(connection, compiled)
        cursor = connection.execute('SELECT * FROM evaluated ORDER BY "#row"')
        header = [d[0] for d in cursor.description]
        found = [dict(zip(header, row, strict=True)) for row in cursor.fetchall()]
    finally:
        connection.close()
    return [{**row, "compiled": compiled} for row in found]


def assert_sql_matches_program(engine: Any, patients: list[dict[str, Any]], folder: Path) -> None:
    checked = engine.checked
    program = KleeneProgram.of(checked)
    for patient, row in zip(patients, sql_columns(engine, patients, folder), strict=True):
        compiled = row["compiled"]
        if _has_date_time(checked, patient):
            continue  # SQL leaves date-times to the engine: such a row is never plain
        assert row["plain"], f"a row of plain cells is not plain: {patient}"
        outcomes = program.outcomes(patient)
        for index, (cid, column) in enumerate(compiled.passes.items()):
            _agree(row[f"p{index}"], outcomes[cid][1], column.exact, f"criterion {cid}", patient)
        for index, ((_, closure), column) in enumerate(zip(program.assumptions, compiled.assumptions, strict=True)):
            _agree(row[f"a{index}"], closure(patient, None), column.exact, f"assumption {index}", patient)
        for index, (dotted, column) in enumerate(compiled.paths.items()):
            cid, _, _ = dotted.partition(".")
            path = next(p for p in _all_paths(checked.paths[cid]) if f"{cid}.{p.dotted}" == dotted)
            _agree(row[f"q{index}"], program.condition_of(path.item.body)(patient, None), column.exact,
                   f"path {dotted}", patient)


def _has_date_time(checked: Any, patient: dict[str, Any]) -> bool:
    """Does the patient give a date-time (a fact, or a history item's field)? SQL leaves those to the engine."""
    for name, value in patient.items():
        kind = checked.facts[name].type
        if isinstance(kind, DateTimeType):
            return True
        if isinstance(kind, ListType) and any(isinstance(f.type, DateTimeType) and item[i] is not None
                                              for item in value.items for i, f in enumerate(kind.fields)):
            return True
    return False


def _all_paths(paths: tuple[Any, ...]) -> list[Any]:
    return [found for path in paths for found in (path, *_all_paths(path.subpaths))]


def _agree(sql: Any, kleene: Any, exact: bool, what: str, patient: Any) -> None:
    if exact:
        assert sql == kleene, f"{what}: SQL {sql}, Kleene {kleene}, patient {patient}"
    else:
        assert sql is None or sql == kleene, f"{what} (inexact): SQL {sql}, Kleene {kleene}, patient {patient}"


@pytest.mark.parametrize("generator", [test_generated, test_histories_generated], ids=["flat", "histories"])
@SETTINGS
@given(st.data())
def test_sql_equals_the_kleene_program_on_generated_protocols(tmp_path_factory, generator, data):
    engine = generator.engine_for(data.draw(generator.protocols()))
    patients = [values(engine.checked, data.draw(partial_patients(engine.checked))) for _ in range(PATIENTS)]
    assert_sql_matches_program(engine, patients, tmp_path_factory.mktemp("sql"))
