"""Benchmark checks with a history: the CD33CART protocol, a patient with a 10-item therapy history.

Prints in-process figures for the whole check (verdict and explanation) with the history all known,
with unknown fields, and possibly incomplete, each also as a ratio to a hand-written baseline: plain
Python deciding the eight wash-outs of item 7b over the same ten items. Asserts nothing.
Usage: python benchmarks/bench_histories.py [--iterations N]
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import yaml
from bench_check import per_call_us  # the same timing as the other benchmark (run from any folder)

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "nct03971799_cd33_car_t.elig"
CASES = ROOT / "protocols" / "cases" / "nct03971799.yaml"
TEN_LINES = [  # (class, last dose, half-life): all cleared by apheresis on 2026-03-09
    ("systemic_chemo", "2025-05-02", None), ("intrathecal_chemo", "2025-05-02", None),
    ("systemic_chemo", "2025-07-20", None), ("tki", "2025-08-15", "113 h"), ("antibody", "2025-09-30", "18 d"),
    ("hma_venetoclax", "2025-12-01", None), ("investigational", "2026-01-05", None),
    ("systemic_chemo", "2026-02-10", None), ("intrathecal_chemo", "2026-02-10", None),
    ("hydroxyurea", "2026-03-06", None),
]


def items(unknown_fields: bool) -> list[dict]:
    found = []
    for index, (kind, last_dose, half_life) in enumerate(TEN_LINES):
        item = {"agent_class": kind, "last_dose": last_dose} | ({"half_life": half_life} if half_life else {})
        if unknown_fields and index in (0, 2, 5):
            del item["last_dose"]  # three old courses whose end date is not on file
        found.append(item)
    return found


def hand_written(apheresis: dt.date, therapies: list[tuple[str, dt.date, float | None]]) -> bool:
    """The eight wash-outs of item 7b as plain Python, for the baseline."""
    limits = {"systemic_chemo": 14, "clofarabine_nitrosourea": 14, "hydroxyurea": 1, "hma_venetoclax": 7,
              "intrathecal_chemo": 3}
    strict = {"investigational": 28, "clofarabine_nitrosourea": 42}
    for kind, last_dose, half_life_h in therapies:
        days = (apheresis - last_dose).days
        if kind in limits and days <= limits[kind]:
            return False
        if kind in strict and days < strict[kind]:
            return False
        if kind == "tki" and half_life_h is not None and days * 24 < min(3 * half_life_h, 7 * 24):
            return False
        if kind == "antibody" and half_life_h is not None and days * 24 < 3 * half_life_h:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=500)
    iterations = parser.parse_args().iterations
    from eligib.api import Engine

    engine = Engine.from_file(str(PROTOCOL))
    base = yaml.safe_load(CASES.read_text())["base"]
    parsed = [(kind, dt.date.fromisoformat(day), {"113 h": 113.0, "18 d": 432.0}.get(half or "")) for kind, day, half
              in TEN_LINES]
    baseline, _ = per_call_us(lambda: hand_written(dt.date(2026, 3, 9), parsed), iterations * 20)
    print(f"hand-written baseline (8 wash-outs over 10 items): {baseline:.2f} us")
    shapes = (("all known", items(False)), ("3 items with an unknown last dose", items(True)),
              ("possibly incomplete", {"items": items(False), "complete": False}))
    for label, history in shapes:
        patient = engine.patient({**base, "prior_therapies": history})
        result = engine.check(patient)
        median, _ = per_call_us(lambda patient=patient: engine.check(patient), iterations)
        print(f"check + explanation, 10-item history {label:<34} verdict {result.verdict:<12} "
              f"median {median:9.1f} us  ({median / baseline:,.0f} x baseline)")


if __name__ == "__main__":
    main()
