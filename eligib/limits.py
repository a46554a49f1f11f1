"""Every resource limit, in one place (documented in docs/limits.md).

Each limit guards against input that would otherwise exhaust memory or time (or crash a library
underneath); going past one is a located `limit-exceeded`-style error with exit code 2, never a
hang, a traceback or a guess. The values are far beyond what a real protocol or patient needs.
"""

from __future__ import annotations

import datetime as dt

# files
MAX_PROTOCOL_BYTES = 1_000_000
MAX_PATIENT_BYTES = 1_000_000
MAX_BUNDLE_BYTES = 64_000_000  # a FHIR bundle: a real record (Synthea: 4-13 MB); only what bindings read is kept
MAX_CASE_FILE_BYTES = 1_000_000
MAX_CACHE_ENTRY_BYTES = 20_000_000  # a parsed protocol in the cache (JSON of its AST)
MAX_TABLE_BYTES = 2_000_000_000  # a JSON Lines table `eligib screen` reads line by line (CSV, Parquet: any size)
MAX_SCREEN_ROWS = 50_000_000  # patients in one `eligib screen` run

MAX_VALUE_TEXT = 200  # characters of one value written as text in a patient file ("6.5 g/dL", a date, a name)

# numbers, in protocols and patient files alike
MAX_NUMBER_DIGITS = 50  # significant digits
MAX_NUMBER_EXPONENT = 50  # a value lies between 1e-50 and 1e50 (in the unit it is written in)

# dates a patient file may give, unless the fact declares a range of its own (as day numbers)
EARLIEST_DATE = dt.date(1900, 1, 1).toordinal()
LATEST_DATE = dt.date(2200, 12, 31).toordinal()

# units
MAX_UNIT_LENGTH = 100  # characters in one unit, such as `mL/min/{1.73_m2}`
MAX_UNIT_EXPONENT = 24  # |n| in `m2`, `10*9`, `10^-6`

# structure
MAX_NESTING = 64  # indented blocks and parentheses in a protocol
MAX_EXPRESSION_DEPTH = 4 * MAX_NESTING  # grammar rules nested inside each other in one expression
MAX_EXPANDED_DEPTH = 200  # operators nested inside each other, counting through the definitions used
MAX_OPERANDS = 1_000  # operands of one `and`/`or` chain, comparison chain, sum or block
MAX_INPUT_NESTING = 32  # objects and lists inside each other in a patient, case or FHIR file
MAX_CASES = 10_000  # cases in one case file
MAX_IMPORTS = 20  # value-set files one protocol imports
MAX_ITEM_COMBINATIONS = 10_000  # items a nested query reads together: the product of the histories' bounds
MAX_HISTORY_ITEMS = 100  # the largest `at most N items` a history may declare
DEFAULT_HISTORY_ITEMS = 20  # a history's bound on its items when it declares none

# reporting
MAX_DIAGNOSTICS = 50  # errors reported for one file; the rest are counted
MAX_QUOTED_LINE = 120  # characters of a source line quoted under a diagnostic

# time
CHECK_SECONDS = 30.0  # solver time for one `eligib check` (`--timeout`)
QUERY_SECONDS = 10.0  # solver time for any one query of a check
GUIDANCE_SECONDS = 30.0  # solver time for the guidance of one check (conditions, sets to collect, changes)
VERIFY_SECONDS = 600.0  # solver time for one `eligib verify`, `example` or `diff` (`--timeout`)
VERIFY_QUERY_SECONDS = 30.0  # for any one question of those (whole-protocol questions are larger)
