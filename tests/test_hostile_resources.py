"""Hostile input, class 3: crashes and hangs (issue 7, items 10-12).

Threads share one Engine; huge numbers, huge unit exponents, floods of keys and operands, and
protocols that would keep the solver busy for minutes all end quickly with a clean answer.

`ELIGIB_THREAD_CHECKS` sets how many checks each of the 8 threads runs (default 300 partial
patients of a small protocol and 100 of the CD7 protocol here; the stress run in
docs/testing.md uses 1,000 of each).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path

import pytest
from hostile import CD7, EXAMPLES, clean_error, cli, process, write

from eligib import Engine

THREADS = 8
HANG = 60  # seconds: these inputs once ran for minutes or hours; a bound this loose only detects a hang

# ------------------------------------------------------------------ 10: one Engine, many threads

SMALL = '''protocol small:
    title: "Threads"
    version: "1"
facts:
    screening: date
    last_dose: date, or none
    hb: decimal g/L, from 0 g/L to 250 g/L
    plt: decimal 10*9/L, from 0 10*9/L to 2000 10*9/L
    ecog: integer, from 0 to 5
    arm: one of (a, b, c)
    pregnant: boolean
assume dose_before_screening "A dose precedes screening":
    last_dose is none or last_dose <= screening
inclusion blood "Blood counts":
    record: "r"
    any of
        hb >= 90 g/L and plt >= 75 10*9/L
        arm is c and hb >= 80 g/L
inclusion fit "Fit":
    record: "r"
    ecog <= 2 if arm in (a, b) else ecog <= 1
exclusion washout "Dose within 3 months":
    record: "r"
    last_dose within 3 months before screening
exclusion pregnancy "Pregnant":
    record: "r"
    pregnant
'''


def outcome(engine: Engine, facts: dict) -> tuple:
    result = engine.check(facts)
    return result.verdict, tuple(result.blocking), tuple(m.name for m in result.missing_facts)


def small_patients(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    patients = []
    for _ in range(count):
        full = {"screening": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "last_dose": rng.choice(["none", f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"]),
                "hb": f"{rng.randint(60, 130)} g/L", "plt": f"{rng.randint(20, 200)} 10*9/L",
                "ecog": rng.randint(0, 3), "arm": rng.choice("abc"), "pregnant": rng.random() < 0.1}
        if full["last_dose"] != "none" and full["last_dose"] > full["screening"]:
            full["last_dose"] = "none"
        for name in rng.sample(sorted(full), rng.randint(1, 4)):
            del full[name]
        patients.append(full)
    return patients


def cd7_patients(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    bases = [json.loads(path.read_text()) for path in sorted(EXAMPLES.glob("*.json"))]
    patients = []
    for _ in range(count):
        facts = dict(rng.choice(bases))
        for name in rng.sample(sorted(facts), rng.randint(1, 5)):
            del facts[name]
        patients.append(facts)
    return patients


def same_in_threads(engine: Engine, patients: list[dict]) -> None:
    """Each of 8 threads checks every patient (in its own order) on the shared engine: no crash, and
    every answer equals the sequential one."""
    expected = [outcome(engine, facts) for facts in patients]
    differences: list[int] = []
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        order = list(range(len(patients)))
        random.Random(seed).shuffle(order)
        try:
            for index in order:
                if outcome(engine, patients[index]) != expected[index]:
                    differences.append(index)
        except BaseException as exc:  # reported below: a thread's exception must fail the test
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and differences == []


def test_threads_share_an_engine_on_partial_patients():
    count = max(300, int(os.environ.get("ELIGIB_THREAD_CHECKS", "300")))
    engine = Engine.from_text(SMALL, "small.elig")
    patients = small_patients(count, seed=1)
    assert sum(1 for p in patients if len(p) < 7) == count  # every one partial
    same_in_threads(engine, patients)


def test_threads_share_the_cd7_engine():
    count = int(os.environ.get("ELIGIB_THREAD_CHECKS", "100"))
    same_in_threads(Engine.from_file(CD7), cd7_patients(count, seed=2))


# ------------------------------------------------------------------ 11: numbers and units that would hang


@pytest.mark.parametrize("name, text", [
    ("json-exponent", '{"alt": 1e999999999}'), ("json-tiny", '{"alt": 1e-999999999}'),
    ("json-digits", '{"alt": ' + "9" * 5000 + "}"), ("json-decimal", '{"alt": 0.' + "1" * 5000 + "}"),
    ("text-digits", '{"alt": "' + "9" * 150 + ' U/L"}'),
    ("yaml-exponent", "alt: 1.0e+999999999\n"), ("yaml-int", "alt: " + "9" * 5000 + "\n"),
    ("unit-exponent", '{"alt": "35 U999999999/L"}'), ("unit-power", '{"alt": "35 10^999999999.U/L"}'),
    ("unit-ten", '{"alt": "35 10*-999999999.U/L"}'), ("unit-long", '{"alt": "35 ' + "U." * 300 + 'U"}'),
])
def test_numbers_and_units_that_would_hang_end_at_once(tmp_path, name, text):
    suffix = ".yaml" if name.startswith("yaml") else ".json"
    started = time.monotonic()
    ran = cli("check", CD7, write(tmp_path / f"p{suffix}", text))
    clean_error(ran, "fact `alt`")
    assert time.monotonic() - started < HANG


# ------------------------------------------------------------------ 12: floods


@pytest.mark.parametrize("count", [10_000, 40_000])
def test_a_flood_of_unknown_keys_is_reported_briefly(tmp_path, count):
    line = "{" + ", ".join(f'"k{i}": {i}' for i in range(count)) + "}"
    started = time.monotonic()
    ran = cli("check", CD7, write(tmp_path / "p.json", line))
    clean_error(ran, f"and {count - 50} more errors, not shown")
    assert time.monotonic() - started < HANG
    assert len(ran.err) < 50_000  # each quoted line is clipped, and only the first errors are shown


def test_a_huge_and_chain_is_refused(tmp_path):
    head = 'protocol p:\n    title: "t"\n    version: "1"\nfacts:\n    b: boolean\ninclusion c "C":\n    record: "r"\n'
    protocol = write(tmp_path / "p.elig", head + "    " + " and ".join(["b"] * 40_000) + "\n")
    clean_error(cli("validate", protocol), "more than 1000 operands of one `and`")


def test_a_check_has_an_overall_time_budget(tmp_path):
    names = [f"b{i}" for i in range(1000)]
    text = ('protocol p:\n    title: "t"\n    version: "1"\nfacts:\n' + "".join(f"    {n}: boolean\n" for n in names)
            + 'inclusion many "Many":\n    record: "r"\n    at least 500 of\n'
            + "".join(f"        {n}\n" for n in names))
    protocol = write(tmp_path / "p.elig", text)
    started = time.monotonic()
    ran = process("check", protocol, write(tmp_path / "p.json", "{}"), "--timeout", "2", timeout=60)
    assert ran.code == 5, ran.text
    assert "error[solver-timeout]" in ran.err and "the time budget of 2 s ran out" in ran.err and "`many`" in ran.err
    assert time.monotonic() - started < HANG


def test_deep_nesting_in_patient_files_is_refused(tmp_path):
    clean_error(cli("check", CD7, write(tmp_path / "p.json", "[" * 100_000 + "]" * 100_000)), "nest more than 32")
    clean_error(cli("check", CD7, write(tmp_path / "p.yaml", "a: " + "[" * 10_000 + "]" * 10_000)), "nest more than 32")


def test_the_time_budget_is_an_api_argument():
    from eligib.logic.budget import SolverTimeout

    engine = Engine.from_text(SMALL, "small.elig")
    with pytest.raises(SolverTimeout) as caught:
        engine.check({}, timeout=1e-9)
    assert caught.value.subject and caught.value.seconds == 1e-9
    assert engine.check({}, timeout=None).verdict == "undetermined"


def test_limits_live_in_one_documented_place():
    from eligib import limits

    documented = (Path(__file__).resolve().parent.parent / "docs" / "limits.md").read_text()
    for name in (n for n in dir(limits) if n.isupper()):
        assert f"`{name}`" in documented, name
