"""Exact units: UCUM codes parsed to (dimension, rational factor). No floats anywhere.

Every quantity is carried as a Fraction in canonical base units, so 6.5 g/dL and 65 g/L are the
same number and thresholds never drift. Unit atoms come from the official UCUM table
(ucum-essence.xml, as maintained and shipped by the `ucumvert` package): each atom's definition
is resolved exactly, recursively, from the decimal strings in that table. The common clinical
atoms are also kept here, so a check needs no XML; a test holds the two to agreement.

Three deliberate departures from UCUM, all for clinical safety and all documented:
- `mol` is a base dimension (SI), not the number 6.0221367e23: a count per litre (10*9/L) must
  never convert into a substance concentration (umol/L);
- `[iU]`/`[IU]` equal the enzyme unit `U` (umol/min): labs report enzyme activity in IU/L and
  U/L interchangeably. UCUM keeps international units arbitrary.
- `%` (and the parts per thousand, million... `[ppth]`, `[ppm]`) and annotations mark a unit's
  kind (below); UCUM makes them plain numbers and gives annotations no meaning.
Special (non-ratio) units such as `Cel` or `[pH]` are refused.

Units convert only within one *kind*: the same dimension, the same units cancelled in the
written unit, and the same *marks*: `%`, and UCUM annotations that divide (`/{1.73_m2}`; one
that multiplies, as in `{cells}/uL`, only labels what is counted). A percentage is not a
plain ratio (`0.62` is not `62 %`), and a clearance per 1.73 m2 of body surface
(`mL/min/{1.73_m2}`) is not a clearance (`mL/min`): neither converts into the other.
`mmol/mol` (amount over amount) and `%` are both dimensionless, but HbA1c in mmol/mol (IFCC)
and in % (NGSP) are different measures, so they never convert into each other (unless a fact
declares how, with `where`); nor does a dose per kilogram per day (`mg/kg/d`) convert into a
frequency (`/d`). Cancellation is counted between the atoms as written, not inside an atom's
own definition, so `[in_i'Hg]` still converts to `mm[Hg]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from eligib.limits import MAX_UNIT_EXPONENT, MAX_UNIT_LENGTH

# dimension vector: mass (g), length (m), time (s), amount (mol), angle (rad), temperature (K),
# charge (C), luminous intensity (cd)
Dims = tuple[int, int, int, int, int, int, int, int]
BASES = ("g", "m", "s", "mol", "rad", "K", "C", "cd")
DIMENSIONLESS: Dims = (0, 0, 0, 0, 0, 0, 0, 0)
TIME: Dims = (0, 0, 1, 0, 0, 0, 0, 0)
# Marks a unit carries beyond its dimension, with their powers: `%`, and annotations such as `{1.73_m2}`.
Marks = tuple[tuple[str, int], ...]
# A unit's kind: its dimension, the base dimensions cancelled between its written atoms, its marks.
Kind = tuple[Dims, Dims, Marks]
PLAIN: Kind = (DIMENSIONLESS, DIMENSIONLESS, ())
DURATION: Kind = (TIME, DIMENSIONLESS, ())
PERCENT_MARK = "%"


def _dims(**powers: int) -> Dims:
    return tuple(powers.get(base, 0) for base in BASES)  # type: ignore[return-value]


@dataclass(frozen=True)
class Unit:
    dims: Dims
    factor: Fraction  # canonical value of 1 of this unit
    cancelled: Dims = DIMENSIONLESS  # base dimensions cancelled between written atoms (mol in mmol/mol)
    marks: Marks = ()  # `%` and annotations, with their powers (sorted, none zero)

    @property
    def kind(self) -> Kind:
        """What must agree for two units to convert into each other. An annotation that divides
        names what the value is normalised to (`/{1.73_m2}`, `/g{creat}`) and changes the measure;
        one that multiplies only labels what is counted (`{cells}/uL`) and does not."""
        marks = tuple((mark, power) for mark, power in self.marks if mark == PERCENT_MARK or power < 0)
        return self.dims, self.cancelled, marks

    def __mul__(self, other: Unit) -> Unit:
        met = tuple(min(abs(a), abs(b)) if a * b < 0 else 0 for a, b in zip(self.dims, other.dims))
        return Unit(tuple(a + b for a, b in zip(self.dims, other.dims)), self.factor * other.factor,  # type: ignore[arg-type]
                    tuple(a + b + c for a, b, c in zip(self.cancelled, other.cancelled, met)),  # type: ignore[arg-type]
                    _merged(self.marks, other.marks))

    def __pow__(self, exponent: int) -> Unit:
        if self.factor == 0 and exponent < 0:
            raise UnitError("a unit cannot divide by zero")
        return Unit(tuple(a * exponent for a in self.dims), self.factor ** exponent,  # type: ignore[arg-type]
                    tuple(a * abs(exponent) for a in self.cancelled),  # type: ignore[arg-type]
                    _merged(tuple((mark, power * exponent) for mark, power in self.marks)))

    def as_atom(self) -> Unit:
        """The same unit with its internal cancellations forgotten (an atom counts as written)."""
        return Unit(self.dims, self.factor, marks=self.marks)


def _merged(*groups: Marks) -> Marks:
    powers: dict[str, int] = {}
    for group in groups:
        for mark, power in group:
            powers[mark] = powers.get(mark, 0) + power
    return tuple(sorted((mark, power) for mark, power in powers.items() if power))


class UnitError(ValueError):
    """A unit string that is not understood."""


ONE = Unit(DIMENSIONLESS, Fraction(1))
_YEAR = Unit(TIME, Fraction(86400) * Fraction("365.25"))  # UCUM `a`: the Julian year
_ENZYME = Unit(_dims(s=-1, mol=1), Fraction(1, 60_000_000))  # U = umol/min

# The common clinical atoms, equal to their UCUM definitions (tests/test_units.py checks this):
# (unit, takes metric prefixes)
COMMON: dict[str, tuple[Unit, bool]] = {
    "g": (Unit(_dims(g=1), Fraction(1)), True),
    "m": (Unit(_dims(m=1), Fraction(1)), True),
    "s": (Unit(TIME, Fraction(1)), True),
    "L": (Unit(_dims(m=3), Fraction(1, 1000)), True),
    "l": (Unit(_dims(m=3), Fraction(1, 1000)), True),
    "mol": (Unit(_dims(mol=1), Fraction(1)), True),
    "kat": (Unit(_dims(s=-1, mol=1), Fraction(1)), True),
    "U": (_ENZYME, True),
    "[iU]": (_ENZYME, True),
    "[IU]": (_ENZYME, True),
    "%": (Unit(DIMENSIONLESS, Fraction(1, 100), marks=((PERCENT_MARK, 1),)), False),
    # parts per thousand, million, billion, trillion: percentages too (they convert into `%`)
    "[ppth]": (Unit(DIMENSIONLESS, Fraction(1, 10**3), marks=((PERCENT_MARK, 1),)), False),
    "[ppm]": (Unit(DIMENSIONLESS, Fraction(1, 10**6), marks=((PERCENT_MARK, 1),)), False),
    "[ppb]": (Unit(DIMENSIONLESS, Fraction(1, 10**9), marks=((PERCENT_MARK, 1),)), False),
    "[pptr]": (Unit(DIMENSIONLESS, Fraction(1, 10**12), marks=((PERCENT_MARK, 1),)), False),
    "min": (Unit(TIME, Fraction(60)), False),
    "h": (Unit(TIME, Fraction(3600)), False),
    "d": (Unit(TIME, Fraction(86400)), False),
    "wk": (Unit(TIME, Fraction(7 * 86400)), False),
    "mo": (Unit(TIME, _YEAR.factor / 12), False),
    "a": (_YEAR, False),
}
# Atoms whose UCUM definition we do not follow (see the module docstring).
OVERRIDDEN = {"mol", "[iU]", "[IU]", "U", "kat", "%", "[ppth]", "[ppm]", "[ppb]", "[pptr]"}
PREFIXES = {
    "Y": Fraction(10) ** 24, "Z": Fraction(10) ** 21, "E": Fraction(10) ** 18, "P": Fraction(10) ** 15,
    "T": Fraction(10) ** 12, "G": Fraction(10) ** 9, "M": Fraction(10) ** 6, "k": Fraction(10) ** 3,
    "h": Fraction(100), "da": Fraction(10), "d": Fraction(1, 10), "c": Fraction(1, 100), "m": Fraction(1, 1000),
    "u": Fraction(1, 10**6), "n": Fraction(1, 10**9), "p": Fraction(1, 10**12), "f": Fraction(1, 10**15),
    "a": Fraction(1, 10**18), "z": Fraction(1, 10**21), "y": Fraction(1, 10**24),
}
# Plain-word aliases that protocol authors and patient files may use.
ALIASES = {
    "year": "a", "years": "a", "yr": "a", "month": "mo", "months": "mo", "week": "wk", "weeks": "wk",
    "day": "d", "days": "d", "hour": "h", "hours": "h", "minute": "min", "minutes": "min",
    "second": "s", "seconds": "s",
    "percent": "%", "IU/L": "[iU]/L", "mmHg": "mm[Hg]", "mcL": "uL", "/mcL": "/uL",
}


def canonical_code(text: str) -> str:
    """The UCUM code for a unit as written (`years` -> `a`)."""
    stripped = text.strip()
    return ALIASES.get(stripped, stripped)


@lru_cache(maxsize=1024)
def parse_unit(text: str) -> Unit:
    """Parse a UCUM unit such as `g/dL`, `umol/L`, `10*9/L`, `mL/min/{1.73_m2}`, `10.L/(min.m2)`, `%`."""
    code = canonical_code(text)
    if not code:
        raise UnitError("empty unit")
    if len(code) > MAX_UNIT_LENGTH:
        raise UnitError(f"a unit is at most {MAX_UNIT_LENGTH} characters long")
    parser = _Parser(code)
    unit = parser.term()
    if parser.position != len(code):
        raise UnitError(f"`{code[parser.position:]}` in `{text}` is not understood")
    return unit


class _Parser:
    """UCUM syntax: term := ['/'] component (('.' | '/') component)*; component := '(' term ')' |
    annotation | factor | [prefix] atom [exponent] [annotation]."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""

    def term(self) -> Unit:
        if self.peek() == "/":
            self.position += 1
            unit = self.component() ** -1
        else:
            unit = self.component()
        while self.peek() in (".", "/") and self.peek():
            operator = self.text[self.position]
            self.position += 1
            right = self.component()
            unit = unit * (right if operator == "." else right ** -1)
        return unit

    def component(self) -> Unit:
        if self.peek() == "(":
            self.position += 1
            unit = self.term()
            if self.peek() != ")":
                raise UnitError(f"missing `)` in `{self.text}`")
            self.position += 1
            return unit * self.annotation()
        if self.peek() == "{":
            return self.annotation()
        match = re.compile(r"10[*^]([+-]?\d+)|(\d+)(?![A-Za-z\[%])").match(self.text, self.position)
        if match:
            self.position = match.end()
            if match.group(1) is not None:
                return Unit(DIMENSIONLESS, Fraction(10) ** self.exponent(match.group(1)))
            if int(match.group(2)) == 0:
                raise UnitError(f"a factor of zero in `{self.text}` is not a unit")
            return Unit(DIMENSIONLESS, Fraction(int(match.group(2))))
        symbol = self.symbol()
        exponent = re.compile(r"[+-]?\d+").match(self.text, self.position)
        power = 1
        if exponent:
            self.position = exponent.end()
            power = self.exponent(exponent.group(0))
        return resolve_symbol(symbol, self.text).as_atom() ** power * self.annotation()

    def exponent(self, written: str) -> int:
        power = int(written)
        if abs(power) > MAX_UNIT_EXPONENT:
            raise UnitError(f"the exponent {written} in `{self.text}` is beyond ±{MAX_UNIT_EXPONENT}")
        return power

    def symbol(self) -> str:
        start, depth = self.position, 0
        while self.position < len(self.text):
            char = self.text[self.position]
            if char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
            elif depth == 0 and (char in "./(){}" or char.isdigit() or char in "+-"):
                break
            self.position += 1
        if self.position == start:
            raise UnitError(f"a unit is expected at `{self.text[start:] or 'the end'}` in `{self.text}`")
        return self.text[start:self.position]

    def annotation(self) -> Unit:
        """An annotation (`{1.73_m2}`) is a mark of the unit's kind: UCUM gives it no value, but it
        changes what is measured, so units with different annotations never convert."""
        if self.peek() == "{":
            end = self.text.find("}", self.position)
            if end < 0:
                raise UnitError(f"unclosed `{{` in `{self.text}`")
            written = self.text[self.position:end + 1]
            self.position = end + 1
            return Unit(DIMENSIONLESS, Fraction(1), marks=((written, 1),))
        return ONE


def resolve_symbol(symbol: str, whole: str = "") -> Unit:
    """A unit atom with an optional metric prefix (`umol`, `dL`, `mm[Hg]`).

    Built-in atoms are tried first, bare and prefixed, so a check reads no table; no official
    atom is spelled like a prefixed built-in one (tests/test_units.py checks), so the order is safe."""
    if symbol in COMMON:
        return COMMON[symbol][0]
    prefixed = _prefixed(symbol, COMMON.get)
    if prefixed is not None:
        return prefixed
    from eligib.values import ucum_table  # the full UCUM table: read only for less common atoms

    found = ucum_table.atom(symbol)
    if found is not None:
        return found[0]
    prefixed = _prefixed(symbol, ucum_table.atom)
    if prefixed is not None:
        return prefixed
    raise UnitError(f"`{symbol}`{f' in `{whole}`' if whole and whole != symbol else ''} is not a UCUM unit")


def _prefixed(symbol: str, lookup: Callable[[str], tuple[Unit, bool] | None]) -> Unit | None:
    for prefix in sorted(PREFIXES, key=len, reverse=True):
        rest = symbol[len(prefix):]
        if symbol.startswith(prefix) and rest:
            atom = lookup(rest)
            if atom is not None and atom[1]:
                return Unit(atom[0].dims, atom[0].factor * PREFIXES[prefix])
    return None


def to_canonical(value: Fraction, unit: str | None) -> Fraction:
    return value if unit is None else value * parse_unit(unit).factor


def from_canonical(value: Fraction, unit: str | None) -> Fraction:
    return value if unit is None else value / parse_unit(unit).factor


def dimension_name(kind: Kind) -> str:
    """`a mass concentration`; a kind with cancelled units says so (`a plain number, as a ratio of amounts`),
    and so does one with marks (`a percentage`, `a volume flow rate per {1.73_m2}`)."""
    dims, cancelled, marks = kind
    if marks == ((PERCENT_MARK, 1),) and dims == DIMENSIONLESS and not any(cancelled):
        return "a percentage"
    name = dimension_name((dims, cancelled, ())) if marks else _dimension_name(dims)
    for mark, power in marks:
        name += f" {'per' if power < 0 else 'times'} {mark}" + (f"^{abs(power)}" if abs(power) != 1 else "")
    if marks:
        return name
    if any(cancelled):
        ratios = " and of ".join(_RATIO_WORDS.get((base, power), f"{base}^{power} quantities")
                                 for base, power in zip(BASES, cancelled) if power)
        return f"a ratio of {ratios}" if dims == DIMENSIONLESS else f"{name}, as a ratio of {ratios}"
    return name


_RATIO_WORDS = {("g", 1): "masses", ("m", 1): "lengths", ("m", 2): "areas", ("m", 3): "volumes",
                ("s", 1): "durations", ("mol", 1): "amounts of substance", ("K", 1): "temperatures"}


def _dimension_name(dims: Dims) -> str:
    names = {
        DIMENSIONLESS: "a plain number", TIME: "a duration", _dims(g=1, m=-3): "a mass concentration",
        _dims(m=-3, mol=1): "a substance concentration", _dims(m=-3, s=-1, mol=1): "a catalytic activity concentration",
        _dims(m=3, s=-1): "a volume flow rate", _dims(g=1): "a mass", _dims(m=1): "a length",
        _dims(g=1, m=-1, s=-2): "a pressure", _dims(m=-3): "a number concentration", _dims(m=2): "an area",
        _dims(m=3): "a volume", _dims(K=1): "a temperature", _dims(mol=1): "an amount of substance",
        _dims(s=-1): "a rate per unit of time",
    }
    return names.get(dims, "a quantity")
