"""Hostile input, generated: random and mutated patient files, units, numbers, protocols and case files.

Whatever the input, eligib answers with a verdict (exit 0, 1, 3) or a clean error (exit 2): never an
internal error (exit 4), a traceback, or a long wait."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal
from pathlib import Path

from hostile import CD7, EXAMPLES, cli
from hypothesis import HealthCheck, given, settings, strategies as st

from eligib.values.numbers import BadNumber, decimal_or_bad
from eligib.values.units import UnitError, parse_unit

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                      HealthCheck.data_too_large])
HANG = 10  # seconds: a parse that hangs would take minutes; this bound only detects a hang
CD7_FACTS = sorted(json.loads((EXAMPLES / "ineligible-alt.json").read_text()))
BASE_PATIENT = (EXAMPLES / "ineligible-alt.json").read_text()


def answered(ran) -> None:
    assert ran.code in (0, 1, 2, 3), ran.text
    assert "internal error" not in ran.text and "Traceback" not in ran.text
    if ran.code == 2:
        assert "error[" in ran.err


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**60, 10**60),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
                         st.sampled_from(["none", "NaN", "Infinity", "1e999999999", "45 U/L", "0.15 U/mL", "2026-02-30",
                                          "2201-01-01", "48 mmol/mol", "35 U/0", "9" * 80, "-0", "1e-60 g/L"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(["value", "unit", "x"]), inner, max_size=3), max_leaves=8)


@FAST
@given(st.dictionaries(st.one_of(st.sampled_from(CD7_FACTS), st.text(max_size=12)), json_values, max_size=8))
def test_random_json_patients(tmp_path_factory, facts):
    path = tmp_path_factory.mktemp("p") / "p.json"
    path.write_text(json.dumps(facts, default=str))
    answered(cli("check", CD7, str(path)))


@FAST
@given(st.text(alphabet=st.sampled_from(list('{}[]:,"- \n0123456789.eE+abcdefghijklmnopqrstuvwxyz_!&*|>#%/\\')),
               max_size=200))
def test_random_yaml_patients(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("p") / "p.yaml"
    path.write_text(text)
    answered(cli("check", CD7, str(path)))


@FAST
@given(st.randoms(use_true_random=False), st.sampled_from(["flip", "cut", "insert", "duplicate"]), st.integers(1, 20))
def test_mutated_patient_files(tmp_path_factory, rng, how, times):
    text = list(BASE_PATIENT)
    for _ in range(times):
        at = rng.randrange(len(text))
        if how == "flip":
            text[at] = rng.choice('{}[]:,"0123456789.eE-+ \nabcxyz')
        elif how == "cut":
            del text[at:at + rng.randint(1, 30)]
        elif how == "insert":
            text[at:at] = list(rng.choice(['"value": ', "1e999", ", ", "{", "}", "NaN", '"alt": 1', "\ufeff", "\x00"]))
        else:
            start = rng.randrange(len(text))
            text[at:at] = text[start:start + rng.randint(1, 40)]
        if not text:
            text = ["{"]
    path = tmp_path_factory.mktemp("p") / "p.json"
    path.write_text("".join(text))
    answered(cli("check", CD7, str(path)))


@given(st.text(alphabet=st.sampled_from(list("0123456789.*^/+-()[]{}_'%aAbcdegGhiklLmMnopsuUy")), max_size=40))
def test_any_unit_text_parses_or_is_refused_at_once(text):
    started = time.monotonic()
    try:
        unit = parse_unit(text)
    except UnitError:
        pass
    else:
        assert unit.factor > 0
    assert time.monotonic() - started < HANG


NUMBER_TEXTS = st.from_regex(r"[+-]?\d{0,80}(\.\d{0,80})?([eE][+-]?\d{1,12})?", fullmatch=True)


@given(st.one_of(st.text(max_size=30), NUMBER_TEXTS))
def test_any_number_text_is_exact_or_refused_at_once(text):
    started = time.monotonic()
    result = decimal_or_bad(text)
    assert isinstance(result, (Decimal, BadNumber))
    assert time.monotonic() - started < HANG


PROTOCOL_LINES = Path(CD7).read_text().splitlines(keepends=True)


@settings(max_examples=max(30, settings.default.max_examples // 10), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False), st.integers(1, 4))
def test_mutated_protocols(tmp_path_factory, rng: random.Random, times):
    lines = list(PROTOCOL_LINES)
    for _ in range(times):
        at = rng.randrange(len(lines))
        choice = rng.randrange(5)
        if choice == 0:
            del lines[at]
        elif choice == 1:
            lines.insert(at, lines[rng.randrange(len(lines))])
        elif choice == 2:
            lines[at] = lines[at].replace("18", rng.choice(["0", "1e9", "9" * 60, "-5", "18.5"]), 1)
        elif choice == 3:
            lines[at] = lines[at].replace("years", rng.choice(["mmol/mol", "U/0", "m999", "%", "days"]), 1)
        else:
            lines[at] = lines[at].replace(" and ", rng.choice([" or ", " / 0 and ", " implies ", " and not "]), 1)
    folder = tmp_path_factory.mktemp("protocol")
    protocol = folder / "p.elig"
    protocol.write_text("".join(lines))
    validated = cli("validate", str(protocol))
    assert validated.code in (0, 2) and "internal error" not in validated.text, validated.text
    if validated.code == 0:
        answered(cli("check", str(protocol), str(EXAMPLES / "ineligible-alt.json"), "--timeout", "10"))


@FAST
@given(st.dictionaries(st.sampled_from(["id", "title", "facts", "set", "unset", "file", "verdict", "blocking",
                                        "missing", "paths", "extra"]), json_values, max_size=6))
def test_random_case_files(tmp_path_factory, case):
    folder = tmp_path_factory.mktemp("cases")
    path = folder / "cases.json.yaml"
    path.write_text(json.dumps({"cases": [case]}, default=str))  # JSON is YAML
    ran = cli("test", CD7, str(path))
    assert ran.code in (0, 1, 2) and "internal error" not in ran.text and "Traceback" not in ran.text, ran.text
