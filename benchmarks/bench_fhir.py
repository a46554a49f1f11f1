"""Reading real-sized FHIR records (issue 12: under 1 s for a 10 MB bundle). Prints, for each bundle, the
time `eligib check` spends reading it for the CD7 protocol (from the file's text to validated facts),
next to the hand-written baseline of that work's floor: the C JSON decoder parsing the whole file
(`json.loads`). Prints figures; asserts nothing (speed is never a test).

    python benchmarks/bench_fhir.py                     # a generated 10 MB record (the CD7 example bundle
                                                        # padded with thousands of unbound Observations)
    python benchmarks/bench_fhir.py FOLDER_OR_BUNDLE... # real records, e.g. Synthea's fhir/ folder

Each figure is the median of three reads, after one read that warms the FHIR libraries (the models'
first use builds their validators, about a second once per process).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from eligib import Engine  # noqa: E402
from eligib.inputs.facts import patient_from_source  # noqa: E402
from eligib.language.source import SourceFile  # noqa: E402

PROTOCOL = ROOT / "protocols" / "cd7_car_t.elig"
CORE = ROOT / "protocols" / "examples" / "fhir" / "eligible-t-all-relapsed.bundle.json"


def generated(folder: Path, megabytes: int = 10) -> Path:
    """The example bundle padded with unbound vital-sign Observations (Synthea's bulk) to `megabytes`."""
    data = json.loads(CORE.read_text())
    filler = []
    while len(json.dumps(filler)) < megabytes * 1_000_000:
        filler += [{"fullUrl": f"urn:uuid:f{len(filler) + i}", "resource": {
            "resourceType": "Observation", "id": f"f{len(filler) + i}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-10-01T09:30:00+00:00",
            "valueQuantity": {"value": 72.5, "unit": "/min", "system": "http://unitsofmeasure.org",
                              "code": "/min"}}} for i in range(1000)]
    data["entry"] = filler[: len(filler) // 2] + data["entry"] + filler[len(filler) // 2:]
    path = folder / f"generated-{megabytes}mb.json"
    path.write_text(json.dumps(data))
    return path


def timed(action: object, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    engine = Engine.from_file(str(PROTOCOL))
    given = engine.given(["screening_date=2026-11-20"]) if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory() as scratch:
        paths = [generated(Path(scratch))] if len(sys.argv) == 1 else sorted(
            p for given_path in sys.argv[1:] for p in
            (Path(given_path).glob("*.json") if Path(given_path).is_dir() else [Path(given_path)]))
        patient_from_source(engine.checked, SourceFile(str(CORE), CORE.read_text()))  # warm the FHIR models
        print(f"{'bundle':<44} {'MB':>6} {'read':>8} {'json.loads':>11} {'ratio':>6} {'facts':>6}")
        for path in paths:
            text = path.read_text(encoding="utf-8")
            source = SourceFile(str(path), text)
            read = timed(lambda source=source: patient_from_source(engine.checked, source, given))
            baseline = timed(lambda text=text: json.loads(text))
            facts = len(patient_from_source(engine.checked, source, given).values)
            print(f"{path.name[:44]:<44} {len(text.encode()) / 1e6:>6.1f} {read:>7.3f}s {baseline:>10.3f}s "
                  f"{read / baseline:>6.1f} {facts:>6}")


if __name__ == "__main__":
    main()
