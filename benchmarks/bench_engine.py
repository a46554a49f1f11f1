"""The speed targets of issue 11 on the CD7 protocol, each printed as a figure and, where the target is a
ratio, as a ratio to its baseline measured in the same run. Asserts nothing: speed is measured here,
never in the test suite.

    python benchmarks/bench_engine.py                 # everything, about two minutes
    python benchmarks/bench_engine.py --only verify   # one part: complete, missing, process, verify, ageing
    python benchmarks/bench_engine.py --ageing-checks 100000   # the full ageing run (about 10 minutes)

Parts:
- complete: a complete patient, eligib's verdict with blocking list (`Engine.decide`) against the
  hand-written exact evaluator (benchmarks/cd7_handwritten.py), and the full check with explanation.
- missing: median check time with 1, 5, 10, 20 and all facts missing (random subsets, fixed seed).
- guidance: check time with the coordinator's guidance for 5, 20 and all facts missing, against the check.
- process: `eligib check` as a process against `python -c pass`, complete and with missing facts.
- verify: `eligib verify` on synthetic protocols of 25 to 400 criteria, and the growth from 100 to 400.
- ageing: one engine checking many patients; the last 1,000 checks against the first 1,000.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_check import per_call_us  # noqa: E402 - importable once the folder is on the path

PROTOCOL = ROOT / "protocols" / "cd7_car_t.elig"
VIGNETTES = ROOT / "protocols" / "cases" / "cd7_vignettes.yaml"
FILLED_REGIMENS = [  # the vignette base leaves two regimens' responses unknown: a complete patient knows them
    {"line": 1, "best_response": "partial_remission", "recurrence_after_cr": False},
    {"line": 2, "best_response": "complete_remission", "recurrence_after_cr": True},
    {"line": 3, "best_response": "progression", "recurrence_after_cr": False}]


def median_us(function: Callable[[], object], iterations: int) -> float:
    return per_call_us(function, iterations)[0]  # the same timing as the other benchmarks


def complete_facts() -> dict[str, Any]:
    base = yaml.safe_load(VIGNETTES.read_text())["base"]
    return {**base, "prior_regimens": FILLED_REGIMENS, "weight": 70}


def plain(engine: Any, values: dict[str, Any]) -> dict[str, Any]:
    """A patient's canonical values as the hand-written evaluator reads them."""
    from eligib.values.types import NONE, History, ListType

    found: dict[str, Any] = {}
    for name, spec in engine.checked.facts.items():
        value = values.get(name)
        if isinstance(value, History) and isinstance(spec.type, ListType):
            fields = [f.name for f in spec.type.fields]
            value = [{f: (None if v is NONE else v) for f, v in zip(fields, item, strict=True)} for item in value.items]
        found[name] = None if value is NONE else value
    return found


def agree_on_vignettes(engine: Any, decide: Callable[[dict[str, Any]], tuple[bool, list[str]]]) -> int:
    """Check the hand-written evaluator against eligib on every complete vignette; return how many."""
    data = yaml.safe_load(VIGNETTES.read_text())
    count = 0
    for case in data["cases"]:
        facts = {**complete_facts(), **case["set"]}
        for name in case["unset"]:
            facts.pop(name, None)
        patient = engine.patient(facts)
        if any(v is None for v in plain(engine, patient.values).values() if not isinstance(v, list)) \
                and engine.decide(patient).verdict == "undetermined":
            continue
        try:
            hand = decide(plain(engine, patient.values))
        except (KeyError, TypeError):
            continue  # a fact the hand-written evaluator needs is unknown: not a complete patient
        decision = engine.decide(patient)
        mine = (decision.verdict == "eligible", decision.blocking)
        if mine != hand:
            raise SystemExit(f"hand-written evaluator disagrees on {case['id']}: {hand} against {mine}")
        count += 1
    return count


def part_complete(iterations: int) -> None:
    import cd7_handwritten

    from eligib import Engine

    engine = Engine.from_file(str(PROTOCOL))
    patient = engine.patient(complete_facts())
    values = plain(engine, patient.values)
    agreed = agree_on_vignettes(engine, cd7_handwritten.decide)
    assert engine.decide(patient).verdict == "eligible" and cd7_handwritten.decide(values) == (True, [])
    hand = median_us(lambda: cd7_handwritten.decide(values), iterations)
    verdict = median_us(lambda: engine.decide(patient), iterations)
    full = median_us(lambda: engine.check(patient), iterations)
    print(f"complete patient (hand-written evaluator agrees with eligib on {agreed} vignettes):")
    print(f"  hand-written exact verdict + blocking list: {hand:9.1f} us")
    print(f"  eligib verdict + blocking list (decide):    {verdict:9.1f} us  = {verdict / hand:6.1f}x hand-written"
          "  (target <= 3x)")
    print(f"  eligib full check with explanation:         {full:9.1f} us  (target < 150 us)")


def partial_patients(engine: Any, missing: int, count: int, seed: int = 11) -> list[Any]:
    facts = complete_facts()
    names = sorted(facts)
    rng = random.Random(seed + missing)
    patients = []
    for _ in range(count):
        dropped = set(names) if missing >= len(names) else set(rng.sample(names, missing))
        patients.append(engine.patient({k: v for k, v in facts.items() if k not in dropped}))
    return patients


def part_missing(patients_per_size: int) -> None:
    from eligib import Engine

    engine = Engine.from_file(str(PROTOCOL))
    total = len(complete_facts())
    print("facts missing (random subsets of a complete patient; median of every check, each patient 3 times):")
    targets = {5: "< 1 ms", 20: "< 3 ms", total: "< 15 ms"}
    for missing in (1, 5, 10, 20, total):
        patients = partial_patients(engine, missing, 1 if missing == total else patients_per_size)
        for patient in patients:
            engine.check(patient)
        samples = []
        for _ in range(3 if missing < total else 30):
            for patient in patients:
                start = time.perf_counter()
                engine.check(patient)
                samples.append(time.perf_counter() - start)
        label = "all" if missing == total else str(missing)
        target = f"  (target {targets[missing]})" if missing in targets else ""
        print(f"  {label:>3} missing: median {statistics.median(samples) * 1e3:7.2f} ms, "
              f"p90 {statistics.quantiles(samples, n=10)[8] * 1e3:7.2f} ms{target}")


def part_guidance(patients_per_size: int) -> None:
    """A check with the coordinator's guidance (what `eligib check` prints) against the check alone."""
    from eligib import Engine
    from eligib.analysis.guidance import guide

    engine = Engine.from_file(str(PROTOCOL))
    total = len(complete_facts())
    print("guidance (median per patient; the same random partial patients as `missing`):")
    for missing in (5, 20, total):
        patients = partial_patients(engine, missing, 1 if missing == total else patients_per_size)
        alone, guided = [], []
        for patient in patients:
            engine.check(patient)
            start = time.perf_counter()
            explanation = engine.check(patient)
            middle = time.perf_counter()
            guide(engine, patient, explanation)
            end = time.perf_counter()
            alone.append(middle - start)
            guided.append(end - start)
        label = "all" if missing == total else str(missing)
        ratio = statistics.median(guided) / statistics.median(alone)
        print(f"  {label:>3} missing: check {statistics.median(alone) * 1e3:8.2f} ms, check + guidance "
              f"{statistics.median(guided) * 1e3:8.2f} ms (max {max(guided) * 1e3:8.2f} ms) = {ratio:5.1f}x the check")


def process_ms(argv: list[str], runs: int) -> float:
    subprocess.run(argv, capture_output=True)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def part_process(runs: int) -> None:
    examples = ROOT / "protocols" / "examples"
    cli = [sys.executable, "-m", "eligib", "check", str(PROTOCOL)]
    bare = process_ms([sys.executable, "-c", "pass"], runs)
    complete = process_ms([*cli, str(examples / "eligible-t-all-relapsed.json")], runs)
    missing = process_ms([*cli, str(examples / "undetermined-missing-several.json")], runs)
    print(f"process start (median of {runs} runs, `python -m eligib check`):")
    print(f"  python -c pass:              {bare:7.1f} ms")
    print(f"  complete patient:            {complete:7.1f} ms = {complete / bare:5.1f}x  (target <= 4x)")
    print(f"  patient with missing facts:  {missing:7.1f} ms = {missing / bare:5.1f}x  (target <= 7x)")


def synthetic_protocol(criteria: int) -> str:
    """A protocol of `criteria` criteria over numbers and booleans, facts shared by pairs of criteria,
    each criterion with two named paths; every criterion can pass, and all can pass together."""
    lines = ["protocol synthetic:", '    title: "Synthetic"', '    version: "1"', "", "facts:"]
    facts = max(2, criteria // 2)
    for index in range(facts):
        lines.append(f"    level_{index}: decimal mg/dL, from 0 mg/dL to 100 mg/dL")
        lines.append(f"    flag_{index}: boolean")
    lines.append("")
    for index in range(criteria):
        level, flag, low = f"level_{index % facts}", f"flag_{index % facts}", 1 + index % 40
        if index % 3:
            lines += [f'inclusion c_{index} "C{index}":', '    record: "r"', "    any of",
                      f"        low: {level} >= {low} mg/dL and {flag}",
                      f"        high: {level} < {low + 50} mg/dL and not {flag}", ""]
        else:
            lines += [f'exclusion c_{index} "C{index}":', '    record: "r"', "    any of",
                      f"        very_high: {level} > {low + 55} mg/dL and {flag}",
                      f"        very_low: {level} < {low / 2} mg/dL and not {flag}", ""]
    return "\n".join(lines)


def part_verify(sizes: list[int]) -> None:
    from eligib import Engine
    from eligib.api import verify

    print("eligib verify on synthetic protocols:")
    times: dict[int, float] = {}
    for size in sizes:
        engine = Engine.from_text(synthetic_protocol(size), f"synthetic-{size}.elig")
        start = time.perf_counter()
        findings = verify(engine)
        times[size] = time.perf_counter() - start
        print(f"  {size:4d} criteria: {times[size]:7.2f} s, {len(findings)} findings")
    if 100 in times and 400 in times:
        print(f"  growth 100 -> 400 criteria: {times[400] / times[100]:.1f}x (linear 4x, quadratic 16x); "
              "target: 400 criteria < 8 s")


def part_ageing(checks: int) -> None:
    from eligib import Engine

    engine = Engine.from_file(str(PROTOCOL))
    pool = partial_patients(engine, 1, 50) + partial_patients(engine, 3, 50)
    window = min(1000, checks // 4)
    durations = []
    for index in range(checks):
        patient = pool[index % len(pool)]
        start = time.perf_counter()
        engine.check(patient)
        durations.append(time.perf_counter() - start)
    first, last = sum(durations[:window]), sum(durations[-window:])
    print(f"ageing: {checks} checks in one engine (1 or 3 facts missing); last {window} / first {window}: "
          f"{last / first:.3f}x (target <= 1.05x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["complete", "missing", "guidance", "process", "verify", "ageing"])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--patients", type=int, default=40, help="partial patients per number missing")
    parser.add_argument("--runs", type=int, default=15, help="process runs")
    parser.add_argument("--verify-sizes", default="25,100,200,400")
    parser.add_argument("--ageing-checks", type=int, default=10000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}")
    parts: dict[str, Callable[[], None]] = {
        "complete": lambda: part_complete(args.iterations), "missing": lambda: part_missing(args.patients),
        "guidance": lambda: part_guidance(args.patients),
        "process": lambda: part_process(args.runs),
        "verify": lambda: part_verify([int(n) for n in args.verify_sizes.split(",")]),
        "ageing": lambda: part_ageing(args.ageing_checks)}
    for name, run in parts.items():
        if args.only in (None, name):
            run()


if __name__ == "__main__":
    main()
