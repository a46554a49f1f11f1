"""The official UCUM table (ucum-essence.xml from the `ucumvert` package), resolved exactly.

Each atom is defined by a decimal value times a unit expression; definitions are resolved
recursively to base units with Fractions. The file is located without importing `ucumvert`
(which would import pint), and read only when a unit is not among units.COMMON.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from xml.etree import ElementTree

from eligib.values.units import COMMON, DIMENSIONLESS, OVERRIDDEN, BASES, Unit, UnitError, parse_unit

BASE_CODES = {"m": "m", "s": "s", "g": "g", "rad": "rad", "K": "K", "C": "C", "cd": "cd"}


def essence_path() -> Path:
    spec = importlib.util.find_spec("ucumvert")
    if spec is None or not spec.submodule_search_locations:
        raise UnitError("the UCUM table is not installed (package `ucumvert`)")
    return Path(list(spec.submodule_search_locations)[0]) / "vendor" / "ucum-essence.xml"


@lru_cache(maxsize=1)
def _definitions() -> dict[str, dict]:
    root = ElementTree.parse(essence_path()).getroot()  # noqa: S314 - a packaged, trusted file
    table: dict[str, dict] = {}
    for element in root:
        tag = element.tag.rsplit("}", 1)[-1]
        code = element.attrib.get("Code")
        if code is None or tag not in ("unit", "base-unit"):
            continue
        entry = {"metric": element.attrib.get("isMetric", "yes" if tag == "base-unit" else "no") == "yes",
                 "special": element.attrib.get("isSpecial") == "yes",
                 "arbitrary": element.attrib.get("isArbitrary") == "yes", "base": tag == "base-unit"}
        value = element.find("{*}value")
        if value is not None:
            entry["unit"] = value.attrib.get("Unit", "1")
            entry["value"] = value.attrib.get("value", "1")
        table[code] = entry
    return table


def codes() -> list[str]:
    return sorted(_definitions())


@lru_cache(maxsize=None)
def atom(symbol: str) -> tuple[Unit, bool] | None:
    """(unit, takes metric prefixes) for a UCUM atom, or None when UCUM has no such atom."""
    if symbol in OVERRIDDEN:
        return COMMON[symbol]
    entry = _definitions().get(symbol)
    if entry is None:
        return None
    if entry["base"]:
        dims = tuple(1 if base == BASE_CODES.get(symbol) else 0 for base in BASES)
        return Unit(dims, Fraction(1)), entry["metric"]  # type: ignore[arg-type]
    if entry["special"]:
        raise UnitError(f"`{symbol}` is a UCUM special unit (not a ratio scale); it cannot be converted exactly")
    if entry["arbitrary"]:
        raise UnitError(f"`{symbol}` is a UCUM arbitrary unit; it converts to no other unit")
    value = Fraction(entry["value"])
    definition = entry["unit"]
    unit = parse_unit(definition) if definition not in ("1", "") else Unit(DIMENSIONLESS, Fraction(1))
    return Unit(unit.dims, unit.factor * value), entry["metric"]
