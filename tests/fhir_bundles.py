"""Build FHIR R4 example bundles from CD7 vignette facts (their JSON twins).

Bound facts become the resources the protocol's bindings read (Patient, LOINC-coded
Observations with reference ranges, CVX-coded Immunizations); the other facts travel as
`urn:eligib:fact` Observations, a history as one per item. Run as a script to rewrite the examples:
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
    vaccine = facts.get("last_live_vaccine_date")
    if vaccine not in (None, "none"):
        resources.append({"resourceType": "Immunization", "id": "live-vaccine", "status": "completed",
                          "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03"}]},
                          "patient": {"reference": "Patient/p"}, "occurrenceDateTime": str(vaccine)})
        used.add("last_live_vaccine_date")
    for name, value in facts.items():
        if name in used:
            continue
        if isinstance(value, list):
            resources += local_history(name, value)
        else:
            resources.append(local_fact(name, value))
    return {"resourceType": "Bundle", "id": f"cd7-{case_id.lower()}", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{case_id.lower()}-{i}", "resource": r} for i, r in enumerate(resources)]}


def local_history(name: str, items: list) -> list[dict]:
    """A history without a binding: one Observation per item, a component per field, and the
    "complete" mark (the vignettes list every item)."""
    observations = []
    for number, item in enumerate(items, start=1):
        observation = local_fact(name, None, f"{name.replace('_', '-')}-{number}")
        observation["component"] = [
            typed_value({"code": {"coding": [{"system": "urn:eligib:field", "code": field}]}}, value)
            for field, value in item.items()]
        observations.append(observation)
    return [*observations, local_fact(name, "complete", f"{name.replace('_', '-')}-complete")]


def local_fact(name: str, value, resource_id: str | None = None) -> dict:
    observation = {"resourceType": "Observation", "id": resource_id or name.replace("_", "-"), "status": "final",
                   "code": {"coding": [{"system": "urn:eligib:fact", "code": name}]},
                   "subject": {"reference": "Patient/p"}}
    return observation if value is None else typed_value(observation, value)


def typed_value(element: dict, value) -> dict:
    if isinstance(value, bool):
        element["valueBoolean"] = value
    elif isinstance(value, int):
        element["valueInteger"] = value
    elif isinstance(value, dt.date) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
        element["valueDateTime"] = str(value)
    elif isinstance(value, str) and re.fullmatch(r"[\d.]+ \S+", value):
        element["valueQuantity"] = ucum(quantity(value, None))
    else:
        element["valueString"] = str(value)
    return element


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
