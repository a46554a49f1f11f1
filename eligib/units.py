"""Exact units: a UCUM subset parsed to (dimension, rational factor). No floats anywhere.

Every quantity is carried as a Fraction in canonical base units (g, m, s, mol), so
6.5 g/dL and 65 g/L are the same number and thresholds never drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

# dimension vector: (mass g, length m, time s, amount mol)
Dims = tuple[int, int, int, int]
DIMENSIONLESS: Dims = (0, 0, 0, 0)
TIME: Dims = (0, 0, 1, 0)


@dataclass(frozen=True)
class Unit:
    dims: Dims
    factor: Fraction  # canonical value of 1 of this unit

    def __mul__(self, other: Unit) -> Unit:
        return Unit(tuple(a + b for a, b in zip(self.dims, other.dims)), self.factor * other.factor)  # type: ignore[arg-type]

    def __pow__(self, exponent: int) -> Unit:
        return Unit(tuple(a * exponent for a in self.dims), self.factor ** exponent)  # type: ignore[arg-type]


class UnitError(ValueError):
    """A unit string that is not understood."""


ONE = Unit(DIMENSIONLESS, Fraction(1))
_SECOND = Unit(TIME, Fraction(1))
_DAY = Unit(TIME, Fraction(86400))
_YEAR = Unit(TIME, Fraction(86400) * Fraction("365.25"))  # UCUM `a`: Julian year

# Atoms that take metric prefixes, and those that do not.
_METRIC = {
    "g": Unit((1, 0, 0, 0), Fraction(1)),
    "m": Unit((0, 1, 0, 0), Fraction(1)),
    "s": _SECOND,
    "L": Unit((0, 3, 0, 0), Fraction(1, 1000)),
    "l": Unit((0, 3, 0, 0), Fraction(1, 1000)),
    "mol": Unit((0, 0, 0, 1), Fraction(1)),
    "kat": Unit((0, 0, -1, 1), Fraction(1)),
    "U": Unit((0, 0, -1, 1), Fraction(1, 60_000_000)),  # enzyme unit = umol/min
    "Pa": Unit((1, -1, -2, 0), Fraction(1000)),
    "m[Hg]": Unit((1, -1, -2, 0), Fraction(1000) * Fraction("133322.0")),
    # Clinical labs report enzyme activity in IU/L and U/L interchangeably; we equate them on purpose.
    "[iU]": Unit((0, 0, -1, 1), Fraction(1, 60_000_000)),
    "[IU]": Unit((0, 0, -1, 1), Fraction(1, 60_000_000)),
}
_PLAIN = {
    "%": Unit(DIMENSIONLESS, Fraction(1, 100)),
    "min": Unit(TIME, Fraction(60)),
    "h": Unit(TIME, Fraction(3600)),
    "d": _DAY,
    "wk": Unit(TIME, Fraction(7 * 86400)),
    "mo": Unit(TIME, _YEAR.factor / 12),
    "a": _YEAR,
}
_PREFIXES = {
    "da": Fraction(10), "h": Fraction(100), "k": Fraction(1000), "M": Fraction(10**6), "G": Fraction(10**9),
    "d": Fraction(1, 10), "c": Fraction(1, 100), "m": Fraction(1, 1000), "u": Fraction(1, 10**6),
    "n": Fraction(1, 10**9), "p": Fraction(1, 10**12), "f": Fraction(1, 10**15),
}
# Plain-word aliases that protocol authors and patient files may use.
ALIASES = {
    "year": "a", "years": "a", "yr": "a", "month": "mo", "months": "mo", "week": "wk", "weeks": "wk",
    "day": "d", "days": "d", "hour": "h", "hours": "h", "minute": "min", "minutes": "min",
    "percent": "%", "IU/L": "[iU]/L", "mmHg": "mm[Hg]",
}
CALENDAR_UNITS = {"d": "days", "wk": "weeks", "mo": "months", "a": "years"}

_COMPONENT = re.compile(r"^(?P<base>10\*[+-]?\d+|10\^[+-]?\d+|[^0-9+-]+?)(?P<exp>[+-]?\d+)?$")


def canonical_code(text: str) -> str:
    """The UCUM code for a unit as written (`years` -> `a`)."""
    stripped = text.strip()
    return ALIASES.get(stripped, stripped)


@lru_cache(maxsize=512)
def parse_unit(text: str) -> Unit:
    """Parse a unit such as `g/dL`, `umol/L`, `10*9/L`, `mL/min/{1.73_m2}`, `%`, `years`."""
    code = canonical_code(text)
    if not code:
        raise UnitError("empty unit")
    # annotations like {cells} carry no dimension; a bare annotation means 1
    code = re.sub(r"(?<=[^./])\{[^{}]*\}", "", code)
    code = re.sub(r"\{[^{}]*\}", "1", code)
    unit = ONE
    # split on `.` and `/`, keeping the operator; a leading `/` means 1/x
    tokens = re.split(r"([./])", code)
    operator = "."
    for token in tokens:
        if token in (".", "/"):
            operator = token
            continue
        if token == "":
            if operator == "." and unit is ONE:
                continue
            raise UnitError(f"`{text}` has an empty term")
        term = _parse_component(token, text)
        unit = unit * (term if operator == "." else term ** -1)
    return unit


def _parse_component(token: str, whole: str) -> Unit:
    if token == "1":
        return ONE
    match = _COMPONENT.match(token)
    if not match:
        raise UnitError(f"`{token}` in `{whole}` is not a unit")
    base, exponent = match.group("base"), int(match.group("exp") or 1)
    if base.startswith(("10*", "10^")):
        return Unit(DIMENSIONLESS, Fraction(10) ** int(base[3:])) ** exponent
    return _atom(base, whole) ** exponent


def _atom(symbol: str, whole: str) -> Unit:
    if symbol in _PLAIN:
        return _PLAIN[symbol]
    if symbol in _METRIC:
        return _METRIC[symbol]
    for prefix, scale in sorted(_PREFIXES.items(), key=lambda item: -len(item[0])):
        rest = symbol[len(prefix):]
        if symbol.startswith(prefix) and rest in _METRIC:
            unit = _METRIC[rest]
            return Unit(unit.dims, unit.factor * scale)
    raise UnitError(f"`{symbol}` in `{whole}` is not a unit this tool knows")


def is_unit(text: str) -> bool:
    try:
        parse_unit(text)
    except UnitError:
        return False
    return True


def compatible(a: str, b: str) -> bool:
    return parse_unit(a).dims == parse_unit(b).dims


def to_canonical(value: Fraction, unit: str | None) -> Fraction:
    return value if unit is None else value * parse_unit(unit).factor


def from_canonical(value: Fraction, unit: str | None) -> Fraction:
    return value if unit is None else value / parse_unit(unit).factor


def dimension_name(dims: Dims) -> str:
    names = {
        DIMENSIONLESS: "a plain number", TIME: "a duration", (1, -3, 0, 0): "a mass concentration",
        (0, -3, 0, 1): "a substance concentration", (0, -3, -1, 1): "a catalytic activity concentration",
        (0, 3, -1, 0): "a volume flow rate", (1, 0, 0, 0): "a mass", (0, 1, 0, 0): "a length",
        (1, -1, -2, 0): "a pressure", (0, -3, 0, 0): "a number concentration",
    }
    return names.get(dims, "a quantity")


def format_decimal(value: Fraction, max_places: int = 6) -> str:
    """Exact decimal when it terminates within max_places, else rounded with a `~`."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole, rest = divmod(value.numerator, value.denominator)
    digits = []
    for _ in range(max_places):
        if rest == 0:
            break
        rest *= 10
        digit, rest = divmod(rest, value.denominator)
        digits.append(str(digit))
    text = f"{sign}{whole}" + (f".{''.join(digits)}" if digits else "")
    return text if rest == 0 else f"~{text}"
