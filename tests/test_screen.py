"""`eligib screen`: every patient's result equals `eligib check` on that patient (generated populations
near eligible patients, with missing facts, bad cells and histories, on all three shipped protocols),
the CLI's report and result files, and every table error a user can cause (exit 2, never a traceback).

ELIGIB_SCREEN_PATIENTS scales the populations (the deep run: ELIGIB_SCREEN_PATIENTS=10000, docs/screening.md).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from population import Population, row_of, write_table

from eligib import Engine, api
from eligib.cli import main
from eligib.inputs.facts import patient_from_mapping
from eligib.language.diagnostics import DiagnosticError

ROOT = Path(__file__).resolve().parent.parent
SCALE = int(os.environ.get("ELIGIB_SCREEN_PATIENTS", "0"))
CD7 = str(ROOT / "protocols" / "cd7_car_t.elig")
COHORT = ROOT / "protocols" / "examples" / "screen" / "patients.csv"
POPULATIONS = [  # protocol, base patient (None: the CD7 complete patient), patients, share missing, seed, workers
    ("cd7_car_t.elig", None, 300, 0.0, 1, 1),
    ("cd7_car_t.elig", None, 80, 0.03, 2, 2),
    ("nct05483491_kklc1_tcr_t.elig", "nct05483491/eligible-gastric-male-45.json", 120, 0.02, 3, 1),
    ("nct03971799_cd33_car_t.elig", "nct03971799/eligible-second-relapse.json", 60, 0.02, 4, 1),
]
IN_SUITE = sum(population[2] for population in POPULATIONS)  # 560; ELIGIB_SCREEN_PATIENTS spreads its number alike


def expected_result(engine: Engine, facts: dict[str, Any]) -> tuple[Any, ...]:
    try:
        found = engine.check(patient_from_mapping(engine.checked, facts), at=engine.timepoint(None))
    except DiagnosticError:
        return ("error",)
    return str(found.verdict), list(found.blocking), [m.name for m in found.missing_facts], list(found.holding_paths)


def complete_cd7(engine: Engine) -> tuple[dict[str, Any], dict[str, str], dict[str, list[dict[str, str]]]]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_engine import complete_facts

    return row_of(engine.checked, complete_facts())


def generated_population(folder: Path, protocol: str, base: str | None, count: int, missing: float,
                         seed: int) -> tuple[Engine, Path, dict[str, str], dict[str, tuple[Any, ...]]]:
    """A population near an eligible patient written as tables: (engine, main table, child tables,
    each patient's `eligib check` result by id)."""
    engine = Engine.from_file(str(ROOT / "protocols" / protocol))
    start = complete_cd7(engine) if base is None else row_of(
        engine.checked, json.loads((ROOT / "protocols" / "examples" / base).read_text()))
    population = Population(engine.checked, seed, missing=missing, bad=0.003, base=start)
    rows, expected = [], {}
    for index in range(count):
        facts, cells, items = population.patient()
        rows.append((f"p{index}", cells, items))
        expected[f"p{index}"] = expected_result(engine, facts)
    main_table, children = write_table(folder, rows, engine.checked)
    return engine, main_table, children, expected


@pytest.mark.parametrize(("protocol", "base", "count", "missing", "seed", "workers"), POPULATIONS)
def test_screen_equals_check_for_every_patient(tmp_path, protocol, base, count, missing, seed, workers):
    engine, main_table, children, expected = generated_population(
        tmp_path, protocol, base, max(count, SCALE * count // IN_SUITE), missing, seed)
    with api.screen(engine, str(main_table), children, workers=workers) as screening:
        verdicts = Counter()
        for result in screening.results():
            got = ("error",) if result.verdict == "error" else \
                (result.verdict, result.blocking, result.missing_facts, result.paths)
            assert got == expected[result.id], f"{result.id}: screen {got}, check {expected[result.id]}"
            assert (result.verdict == "error") == bool(result.errors)
            verdicts[result.verdict] += 1
        assert sum(verdicts.values()) == len(expected)
        if protocol == "cd7_car_t.elig" and missing == 0:  # SQL must settle most complete patients itself
            assert screening.decided_in_sql > len(expected) // 2, screening.decided_in_sql
            assert verdicts["eligible"] and verdicts["ineligible"]


@pytest.fixture
def run(monkeypatch):
    monkeypatch.chdir(ROOT)
    return lambda *args: CliRunner().invoke(main, list(args))


def test_cli_screens_the_example_cohort_as_check_judges_each_file(run, tmp_path):
    out = tmp_path / "results.csv"
    result = run("screen", CD7, str(COHORT), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Screened 14 patients against `cd7_car_t`: 5 eligible, 6 ineligible, "
                                    "3 undetermined, 0 with errors\n")
    assert "  lvef" in result.output and "Missing facts most often" in result.output
    rows = duckdb.sql(f"SELECT * FROM read_csv('{out}', all_varchar=true)").fetchall()
    for patient_id, verdict, blocking, *_ in rows:
        assert patient_id.split("-")[0] == verdict  # each example file is named after its verdict
        if verdict == "ineligible":
            assert blocking
    cd7 = Engine.from_file(CD7)
    for row in duckdb.sql(f"SELECT id, verdict, missing_facts FROM read_csv('{out}', all_varchar=true)").fetchall():
        explanation = cd7.check(str(ROOT / "protocols" / "examples" / f"{row[0]}.json"))
        assert (row[1], (row[2] or "").split()) == (str(explanation.verdict), [m.name for m in
                                                                                 explanation.missing_facts])


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_results_files_have_the_documented_columns(run, tmp_path, suffix):
    out = tmp_path / f"results{suffix}"
    assert run("screen", CD7, str(COHORT), "--out", str(out)).exit_code == 0
    reader = {".parquet": "read_parquet", ".jsonl": "read_json", ".csv": "read_csv"}[suffix]
    relation = duckdb.sql(f"SELECT * FROM {reader}('{out}')")
    assert relation.columns == ["id", "verdict", "blocking", "missing_facts", "paths", "errors"]
    assert len(relation.fetchall()) == 14


def test_json_report_counts_attrition_in_protocol_order(run):
    result = run("screen", CD7, str(COHORT), "--format", "json")
    report = json.loads(result.output)
    assert report["format"] == "eligib.screen/1" and report["patients"] == 14
    assert report["verdicts"] == {"eligible": 5, "ineligible": 6, "undetermined": 3, "error": 0}
    steps = report["attrition"]
    assert [s["criterion"] for s in steps] == list(Engine.from_file(CD7).checked.criteria)
    assert steps[-1]["remaining"] == 14 - 6 and sum(s["removed"] for s in steps) == 6
    assert {s["criterion"]: s["alone"] for s in steps if s["alone"]} == {
        "age": 1, "alt": 1, "disease": 1, "cd7_positive": 1, "pregnancy": 1, "recent_hsct": 1}


def test_library_api_gives_arrow_and_results(tmp_path):
    engine = Engine.from_file(CD7)
    with api.screen(engine, str(COHORT)) as screening:
        table = screening.arrow()
        assert table.num_rows == 14 and table.column_names[:2] == ["id", "verdict"]
        assert [r.id for r in screening.results()][:2] == ["eligible-aml-refractory", "eligible-aml-relapsed"]


def test_a_duckdb_database_table_and_json_lines_read_exactly(run, tmp_path):
    database = tmp_path / "cohort.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute(f"CREATE TABLE people AS SELECT * FROM read_csv('{COHORT}', all_varchar=true)")
    histories = [f"--history={name}={COHORT.with_name(f'patients.{name}.csv')}" for name in
                 ("prior_regimens", "transplants")]
    result = run("screen", CD7, str(database), "--table", "people", "--format", "json", *histories)
    assert json.loads(result.output)["verdicts"] == {"eligible": 5, "ineligible": 6, "undetermined": 3, "error": 0}
    # JSON Lines: numbers keep every digit (a double would round 44.99999999999999999999999 up to 45)
    lines = tmp_path / "edge.jsonl"
    base = json.loads((ROOT / "protocols" / "examples" / "eligible-t-all-relapsed.json").read_text())
    edge = [{"id": "just-below", **base, "lvef": 44.99999999999999999999999},
            {"id": "in-sql-below", **base, "lvef": 44.999999999999999999}, {"id": "at", **base, "lvef": 45}]
    text = "".join(json.dumps({k: v for k, v in e.items() if k != "lvef"})[:-1] + f', "lvef": {lvef}}}\n'
                   for e, lvef in zip(edge, ["44.99999999999999999999999", "44.999999999999999999", "45"],
                                      strict=True))
    lines.write_text(text)
    out = tmp_path / "edge.csv"
    assert run("screen", CD7, str(lines), "--out", str(out)).exit_code == 0
    verdicts = duckdb.sql(f"SELECT id, verdict, blocking FROM read_csv('{out}', all_varchar=true)").fetchall()
    assert verdicts == [("just-below", "ineligible", "lvef"), ("in-sql-below", "ineligible", "lvef"),
                        ("at", "eligible", None)]


@pytest.mark.parametrize(("table", "options", "message"), [
    ("id,age,lvvef\np1,40,50\n", [], "column `lvvef`: unknown fact `lvvef`"),
    ("age,lvef\n40,50\n", [], "no `id` column"),
    ("id,age\np1,40\np1,41\n", [], "patient id `p1` appears more than once"),
    ("id,age\np1,40\n", ["--history", "prior_regimens"], "write NAME=FILE"),
    ("id,age\np1,40\n", ["--history", "age=x.csv"], "`age` is not a history of the protocol"),
    ("id,age\np1,40\n", ["--history", "prior_regimens=missing.csv"], "missing.csv: no such file"),
])
def test_table_errors_exit_2_with_a_located_message(run, tmp_path, table, options, message):
    data = tmp_path / "t.csv"
    data.write_text(table)
    result = run("screen", CD7, str(data), *options)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_unknown_formats_and_bad_cells(run, tmp_path):
    data = tmp_path / "t.txt"
    data.write_text("id\n")
    assert "unknown table format" in run("screen", CD7, str(data)).output
    data = tmp_path / "t.csv"
    data.write_text("id,age,diagnosis,prior_regimens\np1,40 parsecs,t_all,\np2,40,t_al,\np3,40,t_all,maybe\n,40,aml,\n")
    result = run("screen", CD7, str(data), "--out", str(tmp_path / "r.parquet"))
    assert result.exit_code == 0 and "4 with errors" in result.output
    rows = duckdb.sql(f"SELECT id, verdict, errors FROM read_parquet('{tmp_path / 'r.parquet'}')").fetchall()
    assert [r[1] for r in rows] == ["error"] * 4
    assert "unit `parsecs`" in rows[0][2][0] and "expected one of" in rows[1][2][0]
    assert "`maybe` is not `complete` or `incomplete`" in rows[2][2][0] and "the `id` is empty" in rows[3][2][0]


def test_funnel_chart_as_png_and_svg(run, tmp_path):
    png, svg = tmp_path / "funnel.png", tmp_path / "funnel.svg"
    assert run("screen", CD7, str(COHORT), "--plot", str(png)).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run("screen", CD7, str(COHORT), "--plot", str(svg)).exit_code == 0
    text = svg.read_text()
    for label in ("recent_hsct (exclusion): -1", "eligible 5, undetermined 3", "Attrition: cd7_car_t, 14 patients"):
        assert label in text
    result = run("screen", CD7, str(COHORT), "--plot", str(tmp_path / "funnel.gif"))
    assert result.exit_code == 2 and "name the chart .png, .svg or .pdf" in result.output


def test_funnel_without_matplotlib_is_a_clean_error(monkeypatch, tmp_path):
    engine = Engine.from_file(CD7)
    with api.screen(engine, str(COHORT)) as screening:
        report = screening.attrition()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(DiagnosticError) as raised:
        api.plot_funnel(report, str(tmp_path / "funnel.png"))
    assert raised.value.found[0].code == "missing-extra" and "eligib[plot]" in raised.value.found[0].help


def test_worker_processes_do_not_run_the_callers_script_again(tmp_path):
    """Workers are `python -m eligib.screen.residue` processes fed JSON lines: a script without a
    `__main__` guard runs once (multiprocessing's spawn would run it again in every worker)."""
    import subprocess

    script = tmp_path / "screen_it.py"
    script.write_text("from eligib import Engine, api\n"
                      "print('script ran')\n"
                      f"with api.screen(Engine.from_file({CD7!r}), {str(COHORT)!r}, workers=2) as screening:\n"
                      "    print(screening.attrition().verdicts)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "script ran\n{'eligible': 5, 'ineligible': 6, 'undetermined': 3, 'error': 0}\n"


def test_items_naming_no_patient_are_counted_not_lost_silently(run, tmp_path):
    (tmp_path / "o.csv").write_text("id,age,diagnosis\np1,40,t_all\n")
    (tmp_path / "o.prior_regimens.csv").write_text("id,line\np1,1\np9,2\n,3\n")
    result = run("screen", CD7, str(tmp_path / "o.csv"), "--format", "json")
    assert json.loads(result.output)["orphan_items"] == {"prior_regimens": 2}
    text = run("screen", CD7, str(tmp_path / "o.csv")).output
    assert "2 items of `prior_regimens` name no patient of the table" in text


def test_json_lines_empty_text_is_an_error_not_unknown(run, tmp_path):
    data = tmp_path / "e.jsonl"
    data.write_text('{"id": "a", "age": "", "diagnosis": "t_all"}\n{"id": "b", "age": null, "diagnosis": "t_all"}\n')
    report = json.loads(run("screen", CD7, str(data), "--format", "json").output)
    assert report["verdicts"]["error"] == 1 and report["errors"][0]["id"] == "a"
    assert "`` is not a number" in report["errors"][0]["errors"][0]


SMALL = '''protocol small:
    title: "Small"
    version: "1"
facts:
    row: integer, from 0 to 10
    flag: boolean
    sev: one of (none, mild, severe)
    x: decimal mg/dL, from 0 mg/dL to 10 mg/dL
    h: list, at most 3 items:
        a: integer, from 0 to 10
inclusion c0 "C0":
    record: "r"
    row >= 5 and flag and sev is mild and x >= 0.00005 mg/dL
inclusion c1 "C1":
    record: "r"
    no(h where a >= 5)
'''


def screened(protocol: Path, data: Path, *options: str) -> dict[str, tuple[str, list[str]]]:
    """id -> (verdict, errors), from `eligib screen ... --out results.jsonl`."""
    out = data.with_name(data.stem + "-results.jsonl")
    result = CliRunner().invoke(main, ["screen", str(protocol), str(data), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return {r["id"]: (r["verdict"], r["errors"]) for r in map(json.loads, out.read_text().splitlines())}


def test_hostile_tables_found_in_review(tmp_path):
    """Each case once gave a wrong result or an internal error (a review of the first version)."""
    protocol = tmp_path / "small.elig"
    protocol.write_text(SMALL)
    # two JSON Lines tables in one run: each read on its own (they once shared one scratch file)
    (tmp_path / "p.jsonl").write_text('{"id": "p1", "row": 1, "flag": true, "sev": "mild", "x": 1}\n'
                                      '{"id": "p2", "row": 6, "flag": true, "sev": "mild", "x": 1}\n')
    (tmp_path / "p.h.jsonl").write_text('{"id": "p1", "a": 9}\n{"id": "p2", "a": 1}\n')
    assert screened(protocol, tmp_path / "p.jsonl") == {"p1": ("ineligible", []), "p2": ("eligible", [])}
    # `none` for a fact not declared `or none` is an error, even when an enumeration has a value `none`;
    # a JSON text "true" is no boolean; a JSON text holding JSON is a text; a fact may be named `row`
    (tmp_path / "q.jsonl").write_text(
        '{"id": "n", "row": 6, "flag": true, "sev": "none", "x": 1, "h": []}\n'
        '{"id": "t", "row": 6, "flag": "true", "sev": "mild", "x": 1, "h": []}\n'
        '{"id": "j", "row": 6, "flag": true, "sev": "mild", "x": "{\\"value\\": 1, \\"unit\\": \\"mg/dL\\"}", '
        '"h": []}\n'
        '{"id": "big", "row": 6' + "1" * 5000 + ', "flag": true, "sev": "mild", "x": 1, "h": []}\n'
        '{"id": "ok", "row": 6, "flag": true, "sev": "mild", "x": 0.00005, "h": []}\n')
    results = screened(protocol, tmp_path / "q.jsonl")
    assert {pid: verdict for pid, (verdict, _) in results.items()} == {
        "n": "error", "t": "error", "j": "error", "big": "error", "ok": "eligible"}
    assert "`none` is not allowed" in results["n"][1][0] and "expected true or false" in results["t"][1][0]
    # deeply nested JSON in a CSV cell: a bad value, not a crash; child rows with an empty id attach to no one
    (tmp_path / "c.csv").write_text('id,row,flag,sev,x,h\nNone,6,true,mild,' + "[" * 5000 + ',complete\n'
                                    'p2,6,true,mild,1,complete\n')
    (tmp_path / "c.h.csv").write_text("id,a\n,9\n,8\n")
    results = screened(protocol, tmp_path / "c.csv")
    assert results["None"][0] == "error" and results["p2"] == ("eligible", [])
    # a Parquet DOUBLE is read as the decimal it names (5e-05 is 0.00005), as a JSON number would be
    parquet = tmp_path / "d.parquet"
    duckdb.sql(f"COPY (SELECT 'd' AS id, 6 AS row, true AS flag, 'mild' AS sev, 0.00005::DOUBLE AS x) TO '{parquet}' "
               "(FORMAT parquet)")
    assert screened(protocol, parquet)["d"][0] == "undetermined"  # h unknown: no child table, no column
    # a JSON Lines file that is not UTF-8: a table error, exit 2
    (tmp_path / "bad.jsonl").write_bytes(b'{"id": "\xff"}\n')
    result = CliRunner().invoke(main, ["screen", str(protocol), str(tmp_path / "bad.jsonl")])
    assert result.exit_code == 2 and "not UTF-8 text" in result.output


def test_protocols_with_time_points_are_judged_as_check_judges(run, tmp_path):
    cd33 = ROOT / "protocols" / "nct03971799_cd33_car_t.elig"
    engine = Engine.from_file(str(cd33))
    examples = sorted((ROOT / "protocols" / "examples" / "nct03971799").glob("*.json"))
    rows = [(path.stem, *row_of(engine.checked, json.loads(path.read_text()))[1:]) for path in examples]
    main_table, children = write_table(tmp_path, rows, engine.checked)
    for point in (None, "final"):
        with api.screen(engine, str(main_table), children, at=point) as screening:
            got = {r.id: r.verdict for r in screening.results()}
        want = {path.stem: str(engine.check(str(path), at=engine.timepoint(point)).verdict) for path in examples}
        assert got == want
    assert "pending" in {str(engine.check(str(path), at=engine.timepoint(None)).verdict) for path in examples}


def test_output_files_that_cannot_be_written_are_clean_errors(run, tmp_path):
    missing = tmp_path / "no-such-folder"
    for option, name, message in (("--out", "r.csv", "cannot write the results to"),
                                  ("--plot", "f.png", "cannot write the chart to")):
        result = run("screen", CD7, str(COHORT), option, str(missing / name))
        assert result.exit_code == 2 and f"error[io]: {message}" in result.output, result.output
    result = run("screen", CD7, str(COHORT), "--out", str(tmp_path / "r.xlsx"))
    assert result.exit_code == 2 and "name the results file .parquet, .csv or .jsonl" in result.output


def test_second_review_cases(run, tmp_path):
    """A history longer than its declared bound is refused as check refuses it (SQL once decided such a row
    eligible); a fact or field named `id` cannot be screened; a chart or results name that is only a suffix
    is refused before screening."""
    protocol = tmp_path / "p.elig"
    protocol.write_text('protocol p:\n    title: "P"\n    version: "1"\nfacts:\n'
                        '    regs: list, at most 2 items, "Prior regimens":\n        resp: one of (pd, sd, pr, cr)\n'
                        'inclusion refractory "x":\n    record: "x"\n    any(regs where resp is pd)\n')
    (tmp_path / "patients.csv").write_text("id,regs\np1,complete\np2,incomplete\np3,complete\n")
    (tmp_path / "patients.regs.csv").write_text("id,resp\np1,pd\np1,sd\np1,sd\np2,pd\np2,pd\np2,cr\np3,pd\n")
    results = screened(protocol, tmp_path / "patients.csv")
    assert [results[p][0] for p in ("p1", "p2", "p3")] == ["error", "error", "eligible"]
    assert "3 items, but the protocol allows at most 2" in results["p1"][1][0]
    named_id = tmp_path / "i.elig"
    named_id.write_text('protocol i:\n    title: "I"\n    version: "1"\nfacts:\n    regs: list, "Prior":\n'
                        '        id: one of (a, b)\ninclusion c "c":\n    record: "x"\n    any(regs where id is a)\n')
    result = run("screen", str(named_id), str(tmp_path / "patients.csv"))
    assert result.exit_code == 2 and "a fact or history field named `id` cannot be screened" in result.output
    for option, name in (("--plot", ".png"), ("--out", ".csv")):
        result = run("screen", CD7, str(COHORT), option, str(tmp_path / name))
        assert result.exit_code == 2 and "Invalid value" in result.output


def test_spark_options_need_the_spark_engine(run):
    result = run("screen", CD7, str(COHORT), "--master", "local[2]")
    assert result.exit_code == 2 and "--engine spark" in result.output
