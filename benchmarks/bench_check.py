"""Benchmark `eligib check` on the CD7 protocol: in-process checks and the CLI as a process.

Prints figures; it asserts nothing (speed is measured here, never in tests).
Usage: python benchmarks/bench_check.py [--iterations N] [--cli-runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "cd7_car_t.elig"
VIGNETTES = ROOT / "protocols" / "cases" / "cd7_vignettes.yaml"
FIVE_MISSING = ["lvef", "oxygen_saturation", "ecog", "bilirubin", "hbcab_positive"]


def per_call_us(function, iterations: int) -> tuple[float, float]:
    for _ in range(min(50, iterations)):
        function()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples), statistics.quantiles(samples, n=20)[18]


def in_process(iterations: int) -> None:
    from eligib.api import Engine
    from eligib.inputs.facts import patient_from_mapping
    from eligib.report.explain import explain
    from eligib.report.render import to_json

    start = time.perf_counter()
    engine = Engine.from_file(str(PROTOCOL))
    load_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    engine.compiled()
    compile_ms = (time.perf_counter() - start) * 1000
    base = yaml.safe_load(VIGNETTES.read_text())["base"]
    complete = patient_from_mapping(engine.checked, base)
    partial = patient_from_mapping(engine.checked, {k: v for k, v in base.items() if k not in FIVE_MISSING})
    print(f"protocol parse + check: {load_ms:.1f} ms; Z3 compilation (once): {compile_ms:.1f} ms")
    for label, patient in (("all facts known", complete), ("five facts missing", partial)):
        decision = engine.decide(patient)
        median, p95 = per_call_us(lambda patient=patient: explain(engine.checked, engine.decide(patient)), iterations)
        print(f"in-process check + explanation, {label:<18} (verdict {decision.verdict}): "
              f"median {median:8.1f} us, p95 {p95:8.1f} us")
        median, p95 = per_call_us(lambda patient=patient: to_json(engine.check(patient)), iterations)
        print(f"  ... plus JSON rendering:{'':<30}median {median:8.1f} us, p95 {p95:8.1f} us")
    median, p95 = per_call_us(lambda: patient_from_mapping(engine.checked, base), iterations)
    print(f"patient validation ({len(base)} facts):{'':<22}median {median:8.1f} us, p95 {p95:8.1f} us")


def cli(runs: int) -> None:
    command = shutil.which("eligib")
    if command is None:
        print("eligib is not installed as a command; skipping the CLI figures")
        return
    cases = [("eligible, all known", "eligible-t-all-relapsed.json"),
             ("undetermined (Z3 used)", "undetermined-missing-several.json")]
    for label, name in cases:
        argv = [command, "check", str(PROTOCOL), str(ROOT / "protocols" / "examples" / name)]
        subprocess.run(argv, capture_output=True)  # warm the OS cache and Lark's grammar cache
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True)
            samples.append((time.perf_counter() - start) * 1000)
        print(f"CLI `eligib check` as a process, {label:<24}: median {statistics.median(samples):6.1f} ms, "
              f"min {min(samples):6.1f} ms over {runs} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--cli-runs", type=int, default=15)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}")
    in_process(args.iterations)
    cli(args.cli_runs)


if __name__ == "__main__":
    main()
