"""Build FHIR R4 example bundles from CD7 vignette facts (their JSON twins).

Bound facts become the resources the protocol's bindings read (Patient, LOINC-coded
Observations with reference ranges, a SNOMED-coded Procedure, CVX-coded Immunizations); the
other facts travel as `urn:eligib:fact` Observations. Run as a script to rewrite the examples:
    python tests/fhir_bundles.py
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "protocols" / "examples" / "fhir"
LABS = {  # fact: (LOINC, ULN fact or None)
    "alt": ("1742-6", "alt_uln"), "ast": ("1920-8", "ast_uln"), "bilirubin": ("14631-6", "bilirubin_uln"),
    "creatinine": ("14682-9", "creatinine_uln"), "creatinine_clearance": ("35591-7", None),
    "hemoglobin": ("718-7", None), "oxygen_saturation": ("59408-5", None), "lvef": ("10230-1", None),
    "ecog": ("89247-1", None),
}
DECLARED = {"alt": "U/L", "ast": "U/L", "bilirubin": "umol/L", "creatinine": "umol/L", "creatinine_clearance": "mL/min",
            "hemoglobin": "g/L", "oxygen_saturation": "%", "lvef": "%", "ecog": None}
CASES = {"V01": "eligible-t-all-relapsed", "V05": "ineligible-alt", "V10": "undetermined-missing-lvef",
         "V13": "ineligible-recent-hsct", "V14": "ineligible-live-vaccine", "V15": "ineligible-hemoglobin-g-dl",
         "V21": "eligible-aml-relapsed"}


def quantity(raw, default_unit):
    if isinstance(raw, str):
        number, _, unit = raw.partition(" ")
        return {"value": json.loads(number), "unit": unit or default_unit}
    return {"value": raw, "unit": default_unit}


def ucum(q):
    out = {"value": q["value"], "system": "http://unitsofmeasure.org"}
    if q["unit"]:
        out |= {"unit": q["unit"], "code": q["unit"]}
    return out


def bundle(case_id: str, facts: dict) -> dict:
    screening = str(facts["screening_date"])
    resources = [{"resourceType": "Patient", "id": "p", "gender": facts["sex"],
                  "birthDate": birth_date(screening, facts["age"])}]
    used = {"sex", "age"}
    for fact, (loinc, uln) in LABS.items():
        if fact not in facts:
            continue
        q = quantity(facts[fact], DECLARED[fact])
        observation = {"resourceType": "Observation", "id": fact.replace("_", "-"), "status": "final",
                       "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                       "subject": {"reference": "Patient/p"}, "effectiveDateTime": screening}
        observation |= {"valueInteger": q["value"]} if q["unit"] is None else {"valueQuantity": ucum(q)}
        if uln and uln in facts:
            observation["referenceRange"] = [{"high": ucum(quantity(facts[uln], q["unit"]))}]
            used.add(uln)
        resources.append(observation)
        used.add(fact)
    if facts.get("hsct_received") and "last_hsct_date" in facts:
        resources.append({"resourceType": "Procedure", "id": "hsct", "status": "completed",
                          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "234336002"}]},
                          "subject": {"reference": "Patient/p"}, "performedDateTime": str(facts["last_hsct_date"])})
        used.add("last_hsct_date")
    vaccine = facts.get("last_live_vaccine_date")
    if vaccine not in (None, "none"):
        resources.append({"resourceType": "Immunization", "id": "live-vaccine", "status": "completed",
                          "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03"}]},
                          "patient": {"reference": "Patient/p"}, "occurrenceDateTime": str(vaccine)})
        used.add("last_live_vaccine_date")
    for name, value in facts.items():
        if name not in used:
            resources.append(local_fact(name, value))
    return {"resourceType": "Bundle", "id": f"cd7-{case_id.lower()}", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{case_id.lower()}-{i}", "resource": r} for i, r in enumerate(resources)]}


def local_fact(name: str, value) -> dict:
    observation = {"resourceType": "Observation", "id": name.replace("_", "-"), "status": "final",
                   "code": {"coding": [{"system": "urn:eligib:fact", "code": name}]},
                   "subject": {"reference": "Patient/p"}}
    if isinstance(value, bool):
        observation["valueBoolean"] = value
    elif isinstance(value, int):
        observation["valueInteger"] = value
    elif isinstance(value, dt.date) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
        observation["valueDateTime"] = str(value)
    elif isinstance(value, str) and re.fullmatch(r"[\d.]+ \S+", value):
        observation["valueQuantity"] = ucum(quantity(value, None))
    else:
        observation["valueString"] = str(value)
    return observation


def birth_date(screening: str, age: int) -> str:
    day = dt.date.fromisoformat(screening)
    return day.replace(year=day.year - int(age)).isoformat()


def build_all() -> dict[str, dict]:
    sys.path.insert(0, str(ROOT))
    from eligib.tools.cases import load_cases

    cases = {c.id: c for c in load_cases(str(ROOT / "protocols" / "cases" / "cd7_vignettes.yaml"))}
    return {f"{name}.bundle.json": bundle(case_id, cases[case_id].facts) for case_id, name in CASES.items()}


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in build_all().items():
        (OUT / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {OUT / name}")
