"""Hostile input, class 1: wrong verdicts and silent data changes (issue 7, items 1-7).

Each test reproduces one way the tool once gave a wrong answer, and checks the answer now."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from hostile import CD7, CD33, clean_error, cli, example, process, write

# ------------------------------------------------------------------ 1: a unit inside "value"


@pytest.mark.parametrize("alt", [{"value": "0.15 U/mL"}, {"value": {"value": 9.5, "unit": "g/dL"}},
                                 {"value": "9.5 g/dL", "unit": "g/L"}, {"value": "150 U/L", "unit": "U/L"}])
def test_a_unit_inside_value_is_refused_not_dropped(tmp_path, alt):
    patient = write(tmp_path / "p.json", example("eligible-t-all-relapsed", alt=alt))
    clean_error(cli("check", CD7, patient), 'fact `alt`: the "value" of a quantity object is a plain number')


def test_a_quantity_object_with_a_plain_value_still_converts(tmp_path):
    patient = write(tmp_path / "p.json", example("eligible-t-all-relapsed", alt={"value": "0.15", "unit": "U/mL"}))
    ran = cli("check", CD7, patient)
    assert ran.code == 1 and "alt 150 U/L > 3 * alt_uln" in ran.out


# ------------------------------------------------------------------ 2: duplicate keys inside a value


def test_yaml_duplicate_key_inside_a_quantity(tmp_path):
    patient = write(tmp_path / "p.yaml", "age: 45\nalt: {value: 35, value: 500, unit: U/L}\n")
    ran = cli("check", CD7, patient)
    clean_error(ran, "fact `alt`: key `value` is given twice inside its value")
    assert "p.yaml:2:" in ran.err


def test_json_duplicate_key_inside_a_quantity_names_the_fact(tmp_path):
    patient = write(tmp_path / "p.json", '{"age": 45,\n "alt": {"value": 35, "value": 500, "unit": "U/L"}}')
    ran = cli("check", CD7, patient)
    clean_error(ran, "fact `alt`: key `value` is given twice inside its value")
    assert "p.json:2:2" in ran.err


# ------------------------------------------------------------------ 3: look-alike dimensionless units

HBA1C = '''protocol hba1c:
    title: "HbA1c"
    version: "1"
facts:
    hba1c: decimal %, from 0 % to 30 %
inclusion not_diabetic "HbA1c below 5.7 %":
    record: "HbA1c < 5.7 %"
    hba1c < 5.7 %
'''


@pytest.mark.parametrize("given", ["48 mmol/mol", {"value": 48, "unit": "mmol/mol"}, "48 umol/mmol"])
def test_ifcc_hba1c_never_converts_into_percent(tmp_path, given):
    protocol = write(tmp_path / "p.elig", HBA1C)
    patient = write(tmp_path / "p.json", {"hba1c": given})
    clean_error(cli("check", protocol, patient), "cannot be converted to `%`")


def test_a_declared_linear_conversion_reads_ifcc_hba1c_exactly(tmp_path):
    """The NGSP master equation, declared by the protocol: 48 mmol/mol is 6.54304 %, not 4.8 %."""
    from fractions import Fraction

    from eligib import Engine

    declared = HBA1C.replace('hba1c: decimal %, from 0 % to 30 %',
                             'hba1c: decimal %, from 0 % to 30 %, where 1 mmol/mol = 0.09148 % + 2.152 %')
    assert declared != HBA1C
    protocol = write(tmp_path / "p.elig", declared)
    engine = Engine.from_file(protocol)
    assert engine.check({"hba1c": "48 mmol/mol"}).verdict == "ineligible"
    assert engine.checked.facts["hba1c"].type.parse("38 mmol/mol", engine.checked.facts["hba1c"]) == \
        (Fraction("0.09148") * 38 + Fraction("2.152")) / 100
    assert cli("check", protocol, write(tmp_path / "a.json", {"hba1c": "30 mmol/mol"})).code == 0  # 4.9964 %


def test_an_offset_on_the_wrong_side_is_refused(tmp_path):
    wrong = HBA1C.replace('from 0 % to 30 %', 'from 0 % to 30 %, where 0.09148 % = 1 mmol/mol + 2.152 %')
    assert wrong != HBA1C
    protocol = write(tmp_path / "p.elig", wrong)
    clean_error(cli("validate", protocol), "bad-conversion")


def test_percent_thresholds_in_mmol_per_mol_are_a_protocol_error(tmp_path):
    protocol = write(tmp_path / "p.elig", HBA1C.replace("hba1c < 5.7 %", "hba1c < 39 mmol/mol"))
    clean_error(cli("validate", protocol), "unit-mismatch")


def test_like_ratios_still_convert(tmp_path):
    protocol = write(tmp_path / "p.elig", HBA1C)
    assert cli("check", protocol, write(tmp_path / "a.json", {"hba1c": "55 [ppth]"})).code == 0  # 5.5 %
    assert cli("check", protocol, write(tmp_path / "b.json", {"hba1c": "60 [ppth]"})).code == 1  # 6 %


@pytest.mark.parametrize("given", ["0.055 1", "5.5 10*-2", {"value": 0.055, "unit": "1"}])
def test_a_plain_ratio_is_not_a_percentage(tmp_path, given):
    """A ratio written with a plain unit never converts into `%` (issue 10)."""
    protocol = write(tmp_path / "p.elig", HBA1C)
    clean_error(cli("check", protocol, write(tmp_path / "p.json", {"hba1c": given})), "cannot be converted to `%`")


@pytest.mark.parametrize("given", ["0.62", 0.62])
def test_a_bare_fraction_for_a_percentage_is_read_as_written_with_a_warning(tmp_path, given):
    """`"lvef": 0.62` may be a fraction meant as 62 %: it is read as 0.62 %, and the output says so."""
    protocol = write(tmp_path / "p.elig", HBA1C)
    ran = cli("check", protocol, write(tmp_path / "p.json", {"hba1c": given}))
    assert ran.code == 0 and "verdict: ELIGIBLE" in ran.out
    assert "0.62 is read as 0.62 %; if it is a fraction, it means 62 %" in ran.text
    ran = cli("check", "--format", "json", protocol, write(tmp_path / "q.json", {"hba1c": "0.62 %"}))
    assert ran.code == 0 and "ambiguous-percentage" not in ran.text  # the unit says which


def test_a_clearance_is_not_a_clearance_per_body_surface(tmp_path):
    protocol = write(tmp_path / "p.elig", """protocol egfr:
    title: "eGFR"
    version: "1"
facts:
    egfr: decimal mL/min/{1.73_m2}, from 0 mL/min/{1.73_m2} to 300 mL/min/{1.73_m2}, "eGFR"
inclusion renal "eGFR at least 60":
    record: "eGFR >= 60 mL/min/1.73 m2"
    egfr >= 60 mL/min/{1.73_m2}
""")
    clean_error(cli("check", protocol, write(tmp_path / "a.json", {"egfr": "70 mL/min"})), "per {1.73_m2}")
    assert cli("check", protocol, write(tmp_path / "b.json", {"egfr": "1.2 mL/s/{1.73_m2}"})).code == 0  # 72
    assert cli("check", protocol, write(tmp_path / "c.json", {"egfr": "0.9 mL/s/{1.73_m2}"})).code == 1  # 54


# ------------------------------------------------------------------ 4: the exit code survives the output


def test_a_reader_that_stops_early_does_not_make_a_patient_eligible():
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| true`: nobody reads, so writing fails with a broken pipe
    try:
        ran = process("check", CD7, "protocols/examples/ineligible-alt.json", stdout=write_end)
    finally:
        os.close(write_end)
    assert ran.code == 1, ran.err
    assert "Traceback" not in ran.err and "Exception ignored" not in ran.err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_an_error():
    with open("/dev/full", "w") as full:
        ran = process("check", CD7, "protocols/examples/eligible-t-all-relapsed.json", stdout=full)
    assert ran.code == 2 and "error[io]: cannot write the output" in ran.err
    assert "Exception ignored" not in ran.err


# ------------------------------------------------------------------ 5: month windows with an unknown anchor


def transplant(date: str) -> list[dict]:
    """The allo-HSCT of the T-LBL example, on another day."""
    return [{"date": date, "donor": "allogeneic", "complete_remission_after": True, "recurrence_after_cr": True}]


def test_month_window_with_unknown_anchor_is_decided_for_every_completion(cd7):
    facts = example("eligible-t-lbl-relapsed-after-transplant", screening_date=None,
                    transplants=transplant("2026-06-10"))
    result = cd7.check(facts)
    assert result.verdict == "ineligible" and result.blocking == ["recent_hsct"]
    # every screening date the assumptions allow (HSCT <= screening <= lymphodepletion) is ineligible
    lymphodepletion = dt.date.fromisoformat(facts["lymphodepletion_date"])
    day = dt.date(2026, 6, 10)
    while day <= lymphodepletion:
        assert cd7.check({**facts, "screening_date": day.isoformat()}).verdict == "ineligible", day
        day += dt.timedelta(days=1)


def test_month_window_near_its_edge_is_undetermined_only_when_both_outcomes_exist(cd7):
    """A grid of transplant dates around the 6-month edge: undetermined exactly when some allowed
    screening date gives each verdict (checked by trying them all)."""
    base = example("eligible-t-lbl-relapsed-after-transplant", screening_date=None, lymphodepletion_date="2026-12-31")
    for offset in range(-200, -150, 7):
        hsct = dt.date(2026, 12, 31) + dt.timedelta(days=offset)
        facts = {**base, "transplants": transplant(hsct.isoformat())}
        verdicts = set()
        day = hsct
        while day <= dt.date(2026, 12, 31):
            verdicts.add(cd7.check({**facts, "screening_date": day.isoformat()}).verdict)
            day += dt.timedelta(days=5 if day < dt.date(2026, 12, 20) else 1)
        expected = "undetermined" if len(verdicts) > 1 else verdicts.pop()
        assert cd7.check(facts).verdict == expected, hsct


# ------------------------------------------------------------------ 6: dates outside the accepted years


@pytest.mark.parametrize("day", ["2201-01-01", "1899-12-31", "0001-01-01"])
@pytest.mark.parametrize("drop_lymphodepletion", [False, True])
def test_dates_outside_the_accepted_years_are_refused(tmp_path, day, drop_lymphodepletion):
    facts = example("eligible-t-all-relapsed", screening_date=day,
                    lymphodepletion_date=None if drop_lymphodepletion else day)
    ran = cli("check", CD7, write(tmp_path / "p.json", facts))
    clean_error(ran, "fact `screening_date`")
    assert "outside the dates accepted (1900-01-01 to 2200-12-31)" in ran.err


# ------------------------------------------------------------------ 7: the parse cache trusts nothing


def cached_entries(cache: Path) -> list[Path]:
    return sorted((cache / "eligib").glob("*.json"))


def test_an_edited_cache_entry_is_ignored(tmp_path):
    protocol = tmp_path / "cd7.elig"
    shutil.copy(CD7, protocol)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    patient = write(tmp_path / "p.json", example("eligible-t-all-relapsed", age=86))
    assert process("check", str(protocol), patient, env=env).code == 1  # parses, stores the entry
    [entry] = cached_entries(tmp_path / "cache")
    tampered = entry.read_text().replace('"value":{"$F":"85/1"}', '"value":{"$F":"95/1"}')
    assert tampered != entry.read_text()
    entry.write_text(tampered)
    ran = process("check", str(protocol), patient, env=env)
    assert ran.code == 1 and "age 86 years" in ran.out


def test_a_cache_entry_copied_over_another_is_ignored(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    protocols = {}
    for name, path in (("cd7", CD7), ("cd33", CD33)):
        protocols[name] = tmp_path / f"{name}.elig"
        shutil.copy(path, protocols[name])
        before = set(cached_entries(tmp_path / "cache"))
        process("validate", str(protocols[name]), env=env)
        [protocols[name + "-entry"]] = set(cached_entries(tmp_path / "cache")) - before
    shutil.copy(protocols["cd33-entry"], protocols["cd7-entry"])
    ran = process("validate", str(protocols["cd7"]), env=env)
    assert ran.code == 0 and "37 criteria" in ran.out  # CD7's own criteria, not CD33's 53


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_the_cache_does_not_hang(tmp_path):
    protocol = tmp_path / "cd7.elig"
    shutil.copy(CD7, protocol)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    process("validate", str(protocol), env=env)
    [entry] = cached_entries(tmp_path / "cache")
    entry.unlink()
    os.mkfifo(entry)
    ran = process("validate", str(protocol), env=env, timeout=30)
    assert ran.code == 0


def test_a_cache_folder_others_can_write_is_not_used(tmp_path):
    cache = tmp_path / "cache" / "eligib"
    cache.mkdir(parents=True)
    cache.chmod(0o777)
    protocol = tmp_path / "cd7.elig"
    shutil.copy(CD7, protocol)
    assert process("validate", str(protocol), env={"XDG_CACHE_HOME": str(tmp_path / "cache")}).code == 0
    assert cached_entries(tmp_path / "cache") == []


def test_the_cache_round_trips_a_protocol(tmp_path, monkeypatch):
    from eligib.language import loader
    from eligib.language.parser import parse
    from eligib.language.source import SourceFile

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = Path(CD7).read_text()
    loader.store(text, "cd7.elig", parse(text, "cd7.elig"))
    assert loader.load(SourceFile("cd7.elig", text), "cd7.elig") == parse(text, "cd7.elig")
    assert loader.load(SourceFile("cd7.elig", text + "\n"), "cd7.elig") is None
    assert (tmp_path / "eligib" / "key").stat().st_mode & 0o077 == 0
