"""Histories: declaring them, reading them from patient files, what each query means, and how a
verdict over an unknown or possibly incomplete history is decided and explained."""

from __future__ import annotations

import pytest

from eligib import DiagnosticError, Engine

PROTOCOL = '''protocol myeloma_demo:
    title: "Histories demo"
    version: "1"

facts:
    lymphodepletion_date: date
    therapies: list, at most 10 items, ordered by start, "Prior anticancer therapies":
        agent: one of (daratumumab, isatuximab, lenalidomide, bortezomib, carfilzomib)
        start: date
        end: date, or none
        cycles: integer, from 0 to 50, or none
        best_response: one of (cr, vgpr, pr, sd, pd)

valueset anti_cd38 "Anti-CD38 monoclonal antibodies": (daratumumab, isatuximab)
valueset proteasome_inhibitors "Proteasome inhibitors": (bortezomib, carfilzomib)

table half_life "Elimination half-life of each agent":
    daratumumab: 18 days
    isatuximab: 28 days
    lenalidomide: 1 days
    bortezomib: 1 days
    carfilzomib: 1 days

assume ends_after_start "A therapy ends on or after the day it starts":
    every(therapies where end is none or end >= start)

inclusion prior_lines "At least two prior lines, one with a proteasome inhibitor":
    record: "At least 2 prior lines including a PI"
    count(therapies) >= 2 and any(therapies where agent in proteasome_inhibitors)

inclusion progressed "Progressed on the last line":
    record: "Progression on the last line"
    latest(best_response of therapies) is pd

exclusion washout "Anti-CD38 antibody within 5 half-lives of lymphodepletion":
    record: "Anti-CD38 antibody within 5 half-lives"
    any(therapies where agent in anti_cd38 and (end is none or lymphodepletion_date - end < 5 * half_life(agent)))
'''

FIVE_LINES = [
    {"agent": "lenalidomide", "start": "2024-01-10", "end": "2024-09-01", "cycles": 8, "best_response": "vgpr"},
    {"agent": "bortezomib", "start": "2024-10-01", "end": "2025-03-01", "cycles": 6, "best_response": "pr"},
    {"agent": "daratumumab", "start": "2025-04-01", "end": "2026-09-02", "cycles": 16, "best_response": "sd"},
    {"agent": "carfilzomib", "start": "2026-09-10", "end": "2026-11-02", "cycles": "none", "best_response": "pd"},
    {"agent": "isatuximab", "start": "2026-11-05", "end": "2026-11-20", "cycles": 1, "best_response": "pd"},
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_text(PROTOCOL, "myeloma.elig")


def check(engine: Engine, facts: dict) -> object:
    return engine.check({"lymphodepletion_date": "2026-12-01", **facts})


# ------------------------------------------------------------- verdicts and explanations


def test_a_blocking_washout_names_the_item(engine):
    result = check(engine, {"therapies": FIVE_LINES})
    assert result.verdict == "ineligible"
    assert result.blocking == ["washout"]
    reasons = next(c for c in result.criteria if c.id == "washout").reasons
    assert reasons == ["therapies item 5 (agent isatuximab, start 2026-11-05, end 2026-11-20, cycles 1, "
                       "best_response pd) matches `agent in anti_cd38 and (end is none or lymphodepletion_date - "
                       "end < 5 * half_life(agent))`"]


def test_the_washout_clears_after_five_half_lives(engine):
    lines = [*FIVE_LINES[:3], {**FIVE_LINES[3], "agent": "bortezomib"}]
    assert check(engine, {"therapies": lines}).verdict == "eligible"
    ongoing = [*lines, {"agent": "isatuximab", "start": "2026-01-01", "end": "none", "best_response": "pd"}]
    assert check(engine, {"therapies": ongoing}).blocking == ["washout"]


def test_latest_goes_by_the_order_field_not_by_the_listing(engine):
    shuffled = [FIVE_LINES[3], FIVE_LINES[0], FIVE_LINES[1], FIVE_LINES[2]]  # listed last: a line with sd
    assert check(engine, {"therapies": shuffled}).verdict == "eligible"  # latest by start: carfilzomib, pd
    tied = [*shuffled, {**FIVE_LINES[1], "start": FIVE_LINES[3]["start"], "end": "none"}]  # a tie: listed last wins
    assert check(engine, {"therapies": tied}).blocking == ["progressed"]


def test_an_unknown_history_leaves_the_verdict_open_and_matters(engine):
    result = check(engine, {})
    assert result.verdict == "undetermined"
    assert [m.name for m in result.missing_facts] == ["therapies"]


def test_a_possibly_incomplete_history_cannot_prove_an_absence(engine):
    listed = [FIVE_LINES[0], FIVE_LINES[1], {**FIVE_LINES[3], "agent": "bortezomib"}]
    assert check(engine, {"therapies": listed}).verdict == "eligible"
    result = check(engine, {"therapies": {"items": listed, "complete": False}})
    assert result.verdict == "undetermined"  # an unlisted anti-CD38 line may exist
    missing = result.missing_facts[0]
    assert (missing.name, missing.description) == ("therapies", "Prior anticancer therapies; 3 items listed, "
                                                                "more may exist")


def test_an_incomplete_history_still_proves_what_its_items_show(engine):
    result = check(engine, {"therapies": {"items": FIVE_LINES, "complete": False}})
    assert result.verdict == "ineligible" and result.blocking == ["washout"]


def test_an_unknown_field_matters_only_where_it_can_change_the_verdict(engine):
    unknown_end = [*FIVE_LINES[:4], {k: v for k, v in FIVE_LINES[4].items() if k != "end"}]
    assert check(engine, {"therapies": unknown_end}).verdict == "ineligible"  # ongoing, or ended since 11-05
    unknown_agent = [*FIVE_LINES[:4], {k: v for k, v in FIVE_LINES[4].items() if k != "agent"}]
    result = check(engine, {"therapies": unknown_agent})
    assert result.verdict == "undetermined"
    assert "1 with unknown fields" in result.missing_facts[0].description


# ------------------------------------------------------------- patient files


@pytest.mark.parametrize(("history", "message"), [
    ([{"agent": "lenalidomide", "strat": "2024-01-10"}], "item 1 has an unknown field `strat`"),
    ([{"agent": "pomalidomide"}], "item 1, field `agent`: expected one of"),
    ([{"start": "none"}], "item 1, field `start`: `none` is not allowed"),
    ([{"agent": "lenalidomide"}] * 11, "11 items, but the protocol allows at most 10"),
    (["lenalidomide"], "item 1 must be an object of fields"),
    ({"items": [], "complete": "no"}, "`complete` must be true or false"),
    ({"entries": []}, "has `items` and `complete`, not `entries`"),
    ("lenalidomide", "expected a list of items"),
    ([{"agent": "lenalidomide"}] * 50_000, "50000 items, but the protocol allows at most 10"),
    ([{"agent": {"name": "lenalidomide"}}], "item 1, field `agent`: expected one of"),
    ([{"start": "2026-02-30"}], "item 1, field `start`: `2026-02-30` is not a calendar date"),
    ([{"cycles": 10**60}], "item 1, field `cycles`:"),
])
def test_bad_histories_are_refused_with_the_item_and_field(engine, history, message):
    with pytest.raises(DiagnosticError) as raised:
        check(engine, {"therapies": history})
    assert message in str(raised.value)


# ------------------------------------------------------------- the checker


def protocol_with(criterion: str, facts: str = "") -> str:
    head = PROTOCOL.split("assume ends_after_start")[0]
    return head.replace("facts:\n", "facts:\n" + facts) + f'inclusion c "C":\n    record: "r"\n    {criterion}\n'


@pytest.mark.parametrize(("criterion", "code", "hint"), [
    ("any(therapies where agnet is daratumumab)", "unknown-fact", "did you mean `agent`?"),
    ("any(theraples where agent is daratumumab)", "unknown-history", "did you mean `therapies`?"),
    ("any(lymphodepletion_date)", "unknown-history", "histories: therapies"),
    ("max(agnt of therapies) > 2", "unknown-field", "did you mean `agent`?"),
    ("min(therapies where cycles > 2) > 2", "bad-arguments", "write `min(FIELD of therapies ...)`"),
    ("count(cycles of therapies) > 2", "bad-arguments", "write `count(therapies where cycles ...)`"),
    ("every(therapies)", "bad-arguments", "write `every(therapies where CONDITION)`"),
    ("sum(start of therapies) > 2", "type-mismatch", ""),
    ("any(therapies where agent in anti_cd39)", "unknown-value-set", "did you mean `anti_cd38`?"),
    ("any(therapies where best_response in anti_cd38)", "unknown-enum-value", ""),
    ("any(therapies where lymphodepletion_date within 2 months after end)", "calendar-anchor", ""),
    ("any(therapies where start is none)", "not-optional", "add `or none` to the field `start`"),
])
def test_history_mistakes_are_reported(criterion, code, hint):
    with pytest.raises(DiagnosticError) as raised:
        Engine.from_text(protocol_with(criterion), "bad.elig")
    found = [d for d in raised.value.diagnostics if d.code == code]
    assert found, str(raised.value)
    assert hint in (found[0].help or "")


def test_latest_needs_an_order():
    text = protocol_with("latest(agent of therapies) is daratumumab").replace(", ordered by start", "")
    with pytest.raises(DiagnosticError, match="declare the history `ordered by FIELD`"):
        Engine.from_text(text, "bad.elig")


def test_a_table_must_cover_every_value():
    text = protocol_with("any(therapies where half_life(agent) > 2 days)").replace("    carfilzomib: 1 days\n", "")
    with pytest.raises(DiagnosticError, match="table `half_life` has no row for `carfilzomib`"):
        Engine.from_text(text, "bad.elig")


@pytest.mark.parametrize(("fields", "code"), [
    ("        start: date\n        start: date\n", "duplicate-field"),
    ("        sub: list:\n            x: date\n", "nested-history"),
    ("        x: boolean, only if y\n", "guarded-field"),
])
def test_history_declaration_mistakes(fields, code):
    text = PROTOCOL.replace("        agent: one of", fields + "        agent: one of")
    with pytest.raises(DiagnosticError) as raised:
        Engine.from_text(text, "bad.elig")
    assert code in [d.code for d in raised.value.diagnostics]


def test_a_field_hides_a_fact_of_the_same_name_inside_where():
    text = protocol_with("any(therapies where start > lymphodepletion_date) or start > lymphodepletion_date",
                         facts="    start: date\n")
    engine = Engine.from_text(text, "shadow.elig")
    lines = [{"agent": "lenalidomide", "start": "2026-12-05", "best_response": "pr"}]
    assert engine.check({"lymphodepletion_date": "2026-12-01", "start": "2026-01-01",
                         "therapies": lines}).verdict == "eligible"
    assert engine.check({"lymphodepletion_date": "2026-12-01", "start": "2026-01-01",
                         "therapies": []}).verdict == "ineligible"


# ------------------------------------------------------------- witnesses and aggregates


def test_an_example_patient_has_a_history_that_checks_eligible(engine):
    from eligib import api

    patient = api.example(engine)
    assert isinstance(patient["therapies"], list) and len(patient["therapies"]) >= 2
    assert engine.check(patient).verdict == "eligible"


@pytest.mark.parametrize(("expression", "eligible"), [
    ("sum(cycles of therapies) == 31", True),  # the carfilzomib line's cycles are none: not counted
    ("sum(cycles of therapies where agent in anti_cd38) == 17", True),
    ("max(cycles of therapies) == 16", True),
    ("min(cycles of therapies where agent is carfilzomib) is none", True),
    ("earliest(agent of therapies) is lenalidomide", True),
    ("latest(end of therapies where agent in proteasome_inhibitors) == 2026-11-02", True),
    ("every(therapies where start < lymphodepletion_date)", True),
    ("no(therapies where best_response is cr)", True),
    ("count(therapies where best_response is pd) >= 3", False),
])
def test_aggregates(expression, eligible):
    engine = Engine.from_text(protocol_with(expression), "aggregates.elig")
    verdict = engine.check({"lymphodepletion_date": "2026-12-01", "therapies": FIVE_LINES}).verdict
    assert verdict == ("eligible" if eligible else "ineligible")


def test_a_nested_query_reads_the_outer_item():
    text = protocol_with("any(relapses where count(complete_remissions where date < relapse_date) >= 2)",
                         facts="    complete_remissions: list:\n        date: date\n"
                               "    relapses: list:\n        relapse_date: date\n")
    engine = Engine.from_text(text, "nested.elig")
    remissions = [{"date": "2024-01-10"}, {"date": "2025-03-01"}]
    after_second = {"relapses": [{"relapse_date": "2024-06-01"}, {"relapse_date": "2025-09-01"}]}
    after_first = {"relapses": [{"relapse_date": "2024-06-01"}]}
    base = {"lymphodepletion_date": "2026-12-01", "complete_remissions": remissions}
    assert engine.check({**base, **after_second}).verdict == "eligible"
    assert engine.check({**base, **after_first}).verdict == "ineligible"
    unknown = engine.check({**base, "relapses": [{"relapse_date": "2024-06-01"}, {}]})
    assert unknown.verdict == "undetermined" and [m.name for m in unknown.missing_facts] == ["relapses"]


BANDS = '''protocol bands:
    title: "Banded table"
    version: "1"

facts:
    age: integer years, from 0 years to 120 years
    creatinine: decimal mg/dL, from 0 mg/dL to 20 mg/dL

table creatinine_limit "Creatinine limit by age band":
    below 6 years: 0.8 mg/dL
    from 6 years below 11 years: 1 mg/dL
    from 11 years below 16 years: 1.2 mg/dL
    from 16 years: 1.5 mg/dL

inclusion renal "Creatinine below the limit for age":
    record: "x"
    creatinine < creatinine_limit(age)
'''


@pytest.mark.parametrize(("age", "creatinine", "verdict"), [
    (5, "0.79", "eligible"), (5, "0.8", "ineligible"), (6, "0.99", "eligible"), (10, "1.1", "ineligible"),
    (11, "1.1", "eligible"), (16, "1.49", "eligible"), (70, "1.5", "ineligible"),
])
def test_a_banded_table_gives_the_value_of_the_band_the_key_falls_in(age, creatinine, verdict):
    engine = Engine.from_text(BANDS, "bands.elig")
    assert engine.check({"age": age, "creatinine": creatinine}).verdict == verdict


def test_the_solver_reads_banded_tables_too():
    engine = Engine.from_text(BANDS, "bands.elig")
    assert engine.check({"creatinine": "0.9"}).verdict == "undetermined"  # eligible from 6 years on
    assert engine.check({"creatinine": "1.5"}).verdict == "ineligible"  # no band admits it


@pytest.mark.parametrize(("rows", "message"), [
    ("    below 6 years: 0.8 mg/dL\n    from 7 years: 1 mg/dL\n", "leave a gap or overlap"),
    ("    below 6 years: 0.8 mg/dL\n    from 6 years below 5 years: 1 mg/dL\n    from 5 years: 1 mg/dL\n",
     "leave a gap or overlap"),
    ("    from 6 years below 11 years: 1 mg/dL\n    from 11 years: 1 mg/dL\n", "leave a gap or overlap"),
    ("    below 6 years: 0.8 mg/dL\n    x: 1 mg/dL\n", "mixes values and bands"),
    ("    below 6 mg/dL: 0.8 mg/dL\n    from 6 mg/dL: 1 mg/dL\n", "cannot compare"),
])
def test_bands_must_cover_every_number_once(rows, message):
    head, rest = BANDS.split("    below 6 years: 0.8 mg/dL\n", 1)
    text = head + rows + "\ninclusion" + rest.split("\ninclusion", 1)[1]
    with pytest.raises(DiagnosticError, match=message):
        Engine.from_text(text, "bands.elig")


LIBRARY = '''# drug classes
valueset anti_cd38 "Anti-CD38 antibodies", system "urn:oid:2.16.840.1.113883.6.88", version "2026-11": (daratumumab,
                                                                                                 isatuximab)

table half_life "Half-life":
    daratumumab: 18 days
    isatuximab: 28 days
    lenalidomide: 1 days
'''
IMPORTING = '''protocol imports:
    title: "Imports"
    version: "1"

import "IMPORT"

facts:
    lymphodepletion_date: date
    therapies: list:
        agent: one of (daratumumab, isatuximab, lenalidomide)
        end: date

exclusion washout "Anti-CD38 within 5 half-lives":
    record: "x"
    any(therapies where agent in anti_cd38 and lymphodepletion_date - end < 5 * half_life(agent))
'''


def write_protocol(tmp_path, target: str) -> str:
    (tmp_path / "sets").mkdir(exist_ok=True)
    (tmp_path / "sets" / "myeloma.elig").write_text(LIBRARY)
    path = tmp_path / "protocol.elig"
    path.write_text(IMPORTING.replace("IMPORT", target))
    return str(path)


def test_value_sets_and_tables_come_from_an_imported_file(tmp_path):
    engine = Engine.from_file(write_protocol(tmp_path, "sets/myeloma.elig"))
    assert engine.checked.value_sets["anti_cd38"].system == "urn:oid:2.16.840.1.113883.6.88"
    patient = {"lymphodepletion_date": "2026-12-01", "therapies": [{"agent": "isatuximab", "end": "2026-10-01"}]}
    assert engine.check(patient).blocking == ["washout"]
    (tmp_path / "sets" / "myeloma.elig").write_text(LIBRARY.replace("isatuximab: 28 days", "isatuximab: 2 days"))
    assert Engine.from_file(str(tmp_path / "protocol.elig"), cache=True).check(patient).verdict == "eligible"


@pytest.mark.parametrize(("target", "message"), [
    ("../elsewhere.elig", "is outside the protocol's folder"),
    ("sets/../../elsewhere.elig", "is outside the protocol's folder"),
    ("/etc/passwd", "is outside the protocol's folder"),
    ("sets/none.elig", "cannot read value-set file `sets/none.elig`"),
    ("sets", "cannot read value-set file"),
])
def test_imports_stay_in_the_protocols_folder_and_must_exist(tmp_path, target, message):
    (tmp_path.parent / "elsewhere.elig").write_text(LIBRARY)
    with pytest.raises(DiagnosticError, match="bad-import") as raised:
        Engine.from_file(write_protocol(tmp_path, target))
    assert message in str(raised.value)


def test_an_imported_file_holds_only_value_sets_and_tables(tmp_path):
    path = write_protocol(tmp_path, "sets/myeloma.elig")
    (tmp_path / "sets" / "myeloma.elig").write_text(LIBRARY + "define x: true\n")
    with pytest.raises(DiagnosticError, match=r"unexpected `define`\n.*sets/myeloma.elig:9:1"):
        Engine.from_file(path)


def test_diff_finds_patients_with_histories_that_two_versions_judge_apart():
    from eligib import api

    old = Engine.from_text(PROTOCOL, "old.elig")
    new = Engine.from_text(PROTOCOL.replace("5 * half_life", "4 * half_life"), "new.elig")
    difference = api.diff(old, new)
    assert not difference.equivalent and difference.changed == ["washout"]
    witness = difference.witnesses[0]
    assert (old.check(witness.patient).verdict, new.check(witness.patient).verdict) == ("ineligible", "eligible")
    assert api.diff(old, Engine.from_text(PROTOCOL, "same.elig")).equivalent


def test_diff_refuses_histories_declared_differently():
    from eligib import api

    old = Engine.from_text(PROTOCOL, "old.elig")
    new = Engine.from_text(PROTOCOL.replace("at most 10 items", "at most 12 items"), "new.elig")
    with pytest.raises(DiagnosticError, match="incompatible-fact"):
        api.diff(old, new)


def test_nested_queries_are_bounded_by_the_combinations_of_items_they_read():
    facts = "".join(f"    {name}: list, at most 100 items:\n        {field}: date\n"
                    for name, field in (("a", "x"), ("b", "y"), ("c", "z")))
    two_deep = "any(a where any(b where y > x))"
    Engine.from_text(protocol_with(two_deep, facts=facts), "nested.elig")  # 100 x 100: allowed
    with pytest.raises(DiagnosticError, match="reads 1,000,000 combinations of items"):
        Engine.from_text(protocol_with("any(a where any(b where y > x and any(c where z > y)))", facts=facts),
                         "nested.elig")
