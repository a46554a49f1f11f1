"""The value types: one class per kind of fact value, each the one home for everything about its values.

A type owns: how a patient file writes a value (`parse`), the exact canonical value every stage
works with, how a value is shown (`show`) and written back to a facts file (`to_file`), its JSON
Schema, its Z3 encoding and decoding, and a hypothesis strategy that generates values. Canonical
values are:
- a number: a Fraction in canonical base units (units.py), so 6.5 g/dL and 65 g/L are equal;
- a date: its proleptic Gregorian day number (`date.toordinal()`);
- a date-time: its instant in whole seconds since 0001-01-01T00:00:00Z (day number x 86400 + seconds);
- an enumeration value: its name; a boolean: a bool;
- NONE: the fact is known to have no value (test not done, event never happened);
- a history: a `History`, its items' field values in declared order (None for an unknown field).
An unknown fact is simply absent (evaluators use None for it). Adding a type is one new class here.

Z3 and hypothesis are imported inside the methods that need them, so reading patients needs neither.
"""

from eligib.values.types.base import (
    NONE,
    FactSpec,
    History,
    ItemValue,
    NoneValue,
    ParsedSpec,
    SqlCell,
    Value,
    ValueProblem,
    ValueType,
    check_range,
    parse_value,
    shown,
)
from eligib.values.types.boolean import BOOL, BoolType
from eligib.values.types.date import DATE, DateType, TimePointType
from eligib.values.types.enumeration import EnumType
from eligib.values.types.history import ListType
from eligib.values.types.number import NumType
from eligib.values.types.timestamp import DATETIME, DateTimeType

__all__ = ["BOOL", "DATE", "DATETIME", "NONE", "BoolType", "DateTimeType", "DateType", "EnumType", "FactSpec",
           "History", "ItemValue", "ListType", "NoneValue", "NumType", "ParsedSpec", "SqlCell", "TimePointType",
           "Value", "ValueProblem", "ValueType", "check_range", "parse_value", "shown"]
