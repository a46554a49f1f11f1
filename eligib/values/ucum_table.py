"""The official UCUM table (ucum-essence.xml from the `ucumvert` package), resolved exactly.

Each atom is defined by a decimal value times a unit expression; definitions are resolved
recursively to base units with Fractions. The file is located without importing `ucumvert`
(which would import pint), and read only when a unit is not among units.COMMON.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache
from pathlib import Path
from xml.etree import ElementTree

from eligib.values.units import BASES, COMMON, DIMENSIONLESS, OVERRIDDEN, Unit, UnitError, parse_unit

BASE_CODES = {"m": "m", "s": "s", "g": "g", "rad": "rad", "K": "K", "C": "C", "cd": "cd"}


def essence_path() -> Path:
    spec = importlib.util.find_spec("ucumvert")
    if spec is None or not spec.submodule_search_locations:
        raise UnitError("the UCUM table is not installed (package `ucumvert`)")
    return Path(next(iter(spec.submodule_search_locations))) / "vendor" / "ucum-essence.xml"


@dataclass(frozen=True)
class _Entry:
    """One atom of the table: how it is defined, and what may be done with it."""

    metric: bool  # takes metric prefixes
    special: bool  # not a ratio scale (Cel, [pH])
    arbitrary: bool  # converts to nothing ([arb'U])
    base: bool
    unit: str = "1"  # the definition: `value` times this unit
    value: str = "1"


@lru_cache(maxsize=1)
def _definitions() -> dict[str, _Entry]:
    root = ElementTree.parse(essence_path()).getroot()
    table: dict[str, _Entry] = {}
    for element in root:
        tag = element.tag.rsplit("}", 1)[-1]
        code = element.attrib.get("Code")
        if code is None or tag not in ("unit", "base-unit"):
            continue
        value = element.find("{*}value")
        definition = {} if value is None else {"unit": value.attrib.get("Unit", "1"),
                                                 "value": value.attrib.get("value", "1")}
        table[code] = _Entry(element.attrib.get("isMetric", "yes" if tag == "base-unit" else "no") == "yes",
                             element.attrib.get("isSpecial") == "yes", element.attrib.get("isArbitrary") == "yes",
                             tag == "base-unit", **definition)
    return table


def codes() -> list[str]:
    return sorted(_definitions())


@cache
def atom(symbol: str) -> tuple[Unit, bool] | None:
    """(unit, takes metric prefixes) for a UCUM atom, or None when UCUM has no such atom."""
    if symbol in OVERRIDDEN:
        return COMMON[symbol]
    entry = _definitions().get(symbol)
    if entry is None:
        return None
    if entry.base:
        dims = tuple(1 if base == BASE_CODES.get(symbol) else 0 for base in BASES)
        return Unit(dims, Fraction(1)), entry.metric  # type: ignore[arg-type]
    if entry.special:
        raise UnitError(f"`{symbol}` is a UCUM special unit (not a ratio scale); it cannot be converted exactly")
    if entry.arbitrary:
        raise UnitError(f"`{symbol}` is a UCUM arbitrary unit; it converts to no other unit")
    value = Fraction(entry.value)
    definition = entry.unit
    unit = parse_unit(definition) if definition not in ("1", "") else Unit(DIMENSIONLESS, Fraction(1))
    return Unit(unit.dims, unit.factor * value), entry.metric
