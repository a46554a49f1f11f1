"""`eligib screen --engine spark` (Spark in local mode): every patient's result equals the DuckDB screen's
and `eligib check`'s, from CSV, Parquet split into many partitions and JSON Lines; table errors are clean.

Not in the default run (Spark needs Java 17 and the `eligib[spark]` extra, and starting it takes a while):
`.ci/spark`, or `python -m pytest -m spark` with `pip install -e '.[test,spark]'` (docs/testing.md).
"""

from __future__ import annotations

import json

import duckdb
import pytest
from click.testing import CliRunner
from test_screen import CD7, COHORT, ROOT, generated_population

from eligib import Engine, api
from eligib.cli import main
from eligib.language.diagnostics import DiagnosticError

pytestmark = pytest.mark.spark

POPULATIONS = [  # protocol, base patient (None: the CD7 complete patient), patients, share missing, seed
    ("cd7_car_t.elig", None, 150, 0.0, 11),
    ("cd7_car_t.elig", None, 80, 0.03, 12),
    ("nct05483491_kklc1_tcr_t.elig", "nct05483491/eligible-gastric-male-45.json", 60, 0.02, 13),
    ("nct03971799_cd33_car_t.elig", "nct03971799/eligible-second-relapse.json", 40, 0.02, 14),
]


@pytest.fixture(scope="module")
def spark():
    import os
    import sys

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("eligib tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "3")
               .config("spark.sql.files.maxPartitionBytes", "4096")  # small files still split into partitions
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def records(screening) -> list[dict]:
    return [result.record() for result in screening.results()]


def both(engine: Engine, data: str, spark, histories: dict[str, str] | None = None) -> tuple[list[dict], list[dict]]:
    with api.screen(engine, data, histories, backend="spark", spark=spark) as on_spark:
        got = records(on_spark), on_spark.attrition().data()
    with api.screen(engine, data, histories) as on_duckdb:
        want = records(on_duckdb), on_duckdb.attrition().data()
    assert got[1] == want[1]  # the same attrition report, decided-in-SQL count included
    return got[0], want[0]


@pytest.mark.parametrize(("protocol", "base", "count", "missing", "seed"), POPULATIONS)
def test_spark_equals_duckdb_and_check_for_every_patient(tmp_path, spark, protocol, base, count, missing, seed):
    engine, main_table, children, expected = generated_population(tmp_path, protocol, base, count, missing, seed)
    got, want = both(engine, str(main_table), spark, children)
    assert got == want
    assert [r["row"] for r in got] == list(range(1, count + 1))
    for result in got:
        check = ("error",) if result["verdict"] == "error" else \
            (result["verdict"], result["blocking"], result["missing_facts"], result["paths"])
        assert check == expected[result["id"]], result["id"]
    # the same table as Parquet in many row groups (so in many partitions), and as JSON Lines
    parquet = tmp_path / "patients.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{main_table}', all_varchar=true)) TO '{parquet}' "
               "(FORMAT parquet, ROW_GROUP_SIZE 16)")
    parquet_children = {}
    for name, child in children.items():
        target = tmp_path / f"items.{name}.parquet"
        duckdb.sql(f"COPY (SELECT * FROM read_csv('{child}', all_varchar=true)) TO '{target}' "
                   "(FORMAT parquet, ROW_GROUP_SIZE 8)")
        parquet_children[name] = str(target)
    got_parquet, _ = both(engine, str(parquet), spark, parquet_children)
    assert got_parquet == got


def test_json_lines_and_typed_parquet_read_exactly(tmp_path, spark):
    engine = Engine.from_file(CD7)
    lines = tmp_path / "patients.jsonl"
    cohort = duckdb.sql(f"SELECT * FROM read_csv('{COHORT}', all_varchar=true)")
    names = cohort.columns
    with lines.open("w", encoding="utf-8") as handle:
        handle.write("\ufeff")
        for index, row in enumerate(cohort.fetchall()):
            handle.write(json.dumps({k: v for k, v in zip(names, row, strict=True) if v is not None}) + "\n")
            if index % 5 == 0:
                handle.write("   \n")  # blank lines are no rows
    got, want = both(engine, str(lines), spark, {
        name: str(COHORT.with_name(f"patients.{name}.csv")) for name in ("prior_regimens", "transplants")})
    assert got == want and len(got) == 14
    typed = tmp_path / "typed.parquet"  # DOUBLE and DECIMAL columns: read by their shortest exact decimal
    duckdb.sql("COPY (SELECT 'a' AS id, 0.00005::DOUBLE AS alt, 30.5::DECIMAL(6,2) AS age "
               "UNION ALL SELECT 'b', 2.5, 17.0) "
               f"TO '{typed}' (FORMAT parquet)")
    got, want = both(engine, str(typed), spark)
    assert got == want


def test_table_errors_are_clean_and_located(tmp_path, spark):
    engine = Engine.from_file(CD7)
    cases = {
        "dup.csv": ("id,age\na,30\nb,31\na,32\n", "patient id `a` appears more than once"),
        "unknown.csv": ("id,agee\na,30\n", "unknown fact `agee`"),
        "bad.jsonl": ('{"id": "a"}\n\n{"id": "b", "age": 3\n', "bad.jsonl:3: not JSON"),
        "list.jsonl": ('{"id": "a"}\n[1]\n', "list.jsonl:2: not a JSON object"),
        "noid.csv": ("age\n30\n", "no `id` column"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DiagnosticError) as found:
            api.screen(engine, str(tmp_path / name), backend="spark", spark=spark)
        assert message in found.value.found[0].message, name
        assert found.value.found[0].code == "bad-table"
    with pytest.raises(DiagnosticError, match="no such file"):
        api.screen(engine, str(tmp_path / "absent.csv"), backend="spark", spark=spark)
    database = tmp_path / "cohort.duckdb"
    duckdb.connect(str(database)).close()
    with pytest.raises(DiagnosticError, match="screened with DuckDB"):
        api.screen(engine, str(database), table="patients", backend="spark", spark=spark)


def test_cli_engine_spark_writes_results_and_the_report(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "results.parquet"
    result = CliRunner().invoke(main, ["screen", CD7, str(COHORT), "--engine", "spark", "--master", "local[2]",
                                       "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["verdicts"] == {"eligible": 5, "ineligible": 6, "undetermined": 3, "error": 0}
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}')").fetchall() == [(14,)]
    refused = CliRunner().invoke(main, ["screen", CD7, str(COHORT), "--engine", "spark", "--workers", "2"])
    assert refused.exit_code == 2 and "--workers" in refused.output


def test_hostile_csv_cells_read_as_duckdb_reads_them(tmp_path, spark):
    engine = Engine.from_file(CD7)
    table = tmp_path / "hostile.csv"
    table.write_bytes("\ufeffid,age,sex,diagnosis,lvef\r\n"
                      'a, 45,male ,aml,60\r\n'
                      'b,"",female,"t_all",""\r\n'
                      'c,NULL,"ma\nle",aml,55 %\r\n'
                      'd,45,male,aml,"60"\r\n'
                      ',30,male,aml,60\r\n'.encode())
    got, want = both(engine, str(table), spark)
    assert got == want and len(got) == 5


def test_given_facts_reach_every_row_on_spark(tmp_path, spark):
    engine = Engine.from_file(CD7)
    without = tmp_path / "patients.csv"
    duckdb.sql(f"SELECT * EXCLUDE (screening_date) FROM read_csv('{COHORT}', all_varchar=true)").write_csv(str(without))
    histories = {name: str(COHORT.with_name(f"patients.{name}.csv")) for name in ("prior_regimens", "transplants")}
    with api.screen(engine, str(without), histories, backend="spark", spark=spark,
                    facts=("screening_date=2026-11-20",)) as on_spark:
        got = records(on_spark)
    with api.screen(engine, str(COHORT)) as on_duckdb:
        assert got == records(on_duckdb)
    with pytest.raises(DiagnosticError, match="screened with DuckDB"):
        api.screen(engine, str(tmp_path), backend="spark", spark=spark)


EXCLUDING = '''protocol excluding:
    title: "An exclusion on a history"
    version: "1"

facts:
    age: integer years, from 0 years to 120 years
    therapies: list, at most 5 items:
        agent: one of (a, b)

inclusion adult "Adult":
    record: "adult"
    age >= 18 years

exclusion prior_a "Any therapy with agent a":
    record: "no prior a"
    any(therapies where agent is a)
'''


def test_found_in_review(tmp_path, spark):
    """Five differences a review found: each now the same as DuckDB, or a clean error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    protocol = tmp_path / "excluding.elig"
    protocol.write_text(EXCLUDING)
    engine = Engine.from_file(str(protocol))
    # 1. double ids: Spark's text (1.2345678E7) is not DuckDB's (12345678.0); refused, never mismatched
    pq.write_table(pa.table({"id": pa.array([12345678.0]), "age": ["40"]}), tmp_path / "doubles.parquet")
    (tmp_path / "doubles.therapies.csv").write_text("id,agent\n12345678.0,a\n")
    with pytest.raises(DiagnosticError, match="an `id` column of type double is not screened on Spark"):
        api.screen(engine, str(tmp_path / "doubles.parquet"), backend="spark", spark=spark)
    # 2. a struct in a child table's cell stays one (bad) cell: an error row, not a flattened field
    pq.write_table(pa.table({"id": ["p"], "age": ["40"]}), tmp_path / "nested.parquet")
    pq.write_table(pa.table({"id": ["p"], "agent": pa.array([{"agent": "b"}])}), tmp_path / "nested.therapies.parquet")
    got, want = both(engine, str(tmp_path / "nested.parquet"), spark)
    assert got == want and got[0]["verdict"] == "error"
    # 3. text that is not UTF-8: a located error, not U+FFFD in an id
    (tmp_path / "latin1.csv").write_bytes(b"id,age\ncaf\xe9,40\n")
    with pytest.raises(DiagnosticError, match=r"latin1\.csv:2: not UTF-8 text"):
        api.screen(engine, str(tmp_path / "latin1.csv"), backend="spark", spark=spark)
    # 4. JSON Lines split on line feeds only, as Python splits them: a lone CR is JSON whitespace
    (tmp_path / "cr.jsonl").write_bytes(b'{"id": "a",\r "age": 40, "therapies": []}\n{"id": "b", "age": 17}\n')
    got, want = both(engine, str(tmp_path / "cr.jsonl"), spark)
    assert got == want and [r["verdict"] for r in got] == ["eligible", "ineligible"]
    # 5. a session already running is used and left running
    with api.screen(engine, str(tmp_path / "cr.jsonl"), backend="spark") as screening:
        assert screening.rows == 2
    assert spark.range(3).count() == 3
