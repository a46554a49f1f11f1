"""`eligib screen` throughput on generated CD7 patients, next to the in-process engine loop on the same
patients in the same run (issue 12). Prints figures; asserts nothing (speed is never a test).

    python benchmarks/bench_screen.py                      # 20,000 complete patients
    python benchmarks/bench_screen.py --patients 1000000   # the issue's million (generation takes minutes)
    python benchmarks/bench_screen.py --missing 0.03       # partial patients: the residue's throughput

Patients are drawn near the CD7 complete patient (tests/population.py, a few facts changed each), so
verdicts are close calls; the engine loop checks a sample of them (`--loop`), timed per patient.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine import PROTOCOL, complete_facts  # noqa: E402
from population import Population, row_of, write_table  # noqa: E402

from eligib import Engine, api  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--missing", type=float, default=0.0, help="share of facts left out of each patient")
    parser.add_argument("--loop", type=int, default=2_000, help="patients the engine loop checks")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    engine = Engine.from_file(str(PROTOCOL))
    population = Population(engine.checked, 12, missing=args.missing, bad=0.0,
                            base=row_of(engine.checked, complete_facts()))
    started = time.perf_counter()
    drawn = [population.patient() for _ in range(args.patients)]
    rows = [(f"p{i}", cells, items) for i, (_, cells, items) in enumerate(drawn)]
    with tempfile.TemporaryDirectory() as folder:
        main_table, children = write_table(Path(folder), rows, engine.checked)
        print(f"python {sys.version.split()[0]}; {args.patients:,} patients generated and written in "
              f"{time.perf_counter() - started:.1f} s (missing share {args.missing})")
        started = time.perf_counter()
        with api.screen(engine, str(main_table), children, workers=args.workers) as screening:
            screened = time.perf_counter() - started
            in_sql = screening.decided_in_sql
    sample = [facts for facts, _, _ in drawn[:args.loop]]
    from eligib.inputs.facts import patient_from_mapping

    patients = [patient_from_mapping(engine.checked, facts) for facts in sample]
    started = time.perf_counter()
    for patient in patients:
        engine.check(patient)
    loop = (time.perf_counter() - started) / len(patients)
    rate, loop_rate = args.patients / screened, 1 / loop
    print(f"eligib screen (DuckDB, reading the CSV tables included): {screened:.2f} s = {rate:,.0f} patients/s; "
          f"{in_sql:,} decided in SQL, {args.patients - in_sql:,} by the engine")
    print(f"engine loop (Engine.check, patients already read, {len(patients):,} of them): {loop * 1e6:.0f} us each "
          f"= {loop_rate:,.0f} patients/s")
    print(f"screen / loop: {rate / loop_rate:.1f}x the loop's throughput")


if __name__ == "__main__":
    main()
