"""Read a table of patients into DuckDB as text cells, and a row back as the facts a patient file states.

A table has an `id` column and one column per fact (docs/screening.md). Cells are read as text, never
as floats: CSV with every column VARCHAR, Parquet cast to VARCHAR (a DECIMAL keeps its digits), JSON
Lines by Python's reader with exact decimals (DuckDB's JSON reader would read numbers as doubles).
A history fact comes from a child table, `id` plus one column per field, one row per item; its column
in the main table, when present, says `complete` or `incomplete` (more items may exist).
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eligib.inputs.documents import nesting
from eligib.language.checked import CheckedProtocol
from eligib.language.diagnostics import DiagnosticError, error, suggest
from eligib.limits import MAX_INPUT_NESTING, MAX_SCREEN_ROWS, MAX_TABLE_BYTES
from eligib.values.types import ListType

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
COMPLETENESS = {"complete": True, "incomplete": False}


@dataclass
class DataSource:
    """What to screen: a main table, the child table of each history given, a table name for a database."""

    path: str
    histories: dict[str, str] = field(default_factory=dict)  # history fact -> child table file
    table: str | None = None  # for a DuckDB database file
    facts: tuple[str, ...] = ()  # `--fact NAME=VALUE`: a fact every patient gets (a study's anchor)
    facts_file: str | None = None  # `--facts FILE`: the same from a facts file

    @property
    def format(self) -> str:
        if self.table is not None or self.path.endswith((".duckdb", ".db")):
            return "duckdb"
        return FORMATS.get(Path(self.path).suffix.lower(), "")


def discover(checked: CheckedProtocol, source: DataSource) -> DataSource:
    """The source with each history's child table found beside the main table when not given:
    `patients.csv` -> `patients.prior_regimens.csv` (same suffix)."""
    found = dict(source.histories)
    main = Path(source.path)
    for name, info in checked.facts.items():
        beside = main.with_name(f"{main.stem}.{name}{main.suffix}")
        if isinstance(info.type, ListType) and name not in found and source.table is None and beside.is_file():
            found[name] = str(beside)
    return DataSource(source.path, found, source.table, source.facts, source.facts_file)


def table_error(path: str, message: str, help: str, column: str | None = None) -> DiagnosticError:
    where = f"{path}, column `{column}`" if column else path
    return DiagnosticError([error("bad-table", f"{where}: {message}", None, help=help)])


def load_cells(connection: Any, source: DataSource, view: str, scratch: Path) -> list[str]:
    """Make `view` the main table as VARCHAR cells; return its column names."""
    relation = _relation(connection, source.path, source.format, source.table, scratch / f"{view}.csv")
    columns = list(relation.columns)
    cells = cell_expressions(connection, columns, [str(kind) for kind in relation.types], source.path)
    import duckdb

    connection.register(f"{view}_source", relation)
    try:  # reading is lazy: a malformed row shows here, counting every row once
        connection.execute(f'CREATE VIEW "{view}" AS SELECT {cells} FROM "{view}_source"')
        count = connection.execute(f'SELECT count(*) FROM "{view}"').fetchall()[0][0]
    except duckdb.Error as exc:
        raise table_error(source.path, f"cannot be read: {first_line(exc)}", "check the file's format") from None
    if count > MAX_SCREEN_ROWS:
        raise table_error(source.path, f"{count:,} rows, more than the {MAX_SCREEN_ROWS:,} one run screens",
                          "split the table and screen each part")
    return columns


def cell_expressions(connection: Any, columns: list[str], types: list[str], path: str) -> str:
    """The select list reading each column as text cells: a float by the shortest decimal naming it."""
    floats = {c for c, kind in zip(columns, types, strict=True) if kind in ("DOUBLE", "FLOAT")}
    if floats:
        _register_decimal_text(connection)
    return ", ".join(f'{"eligib_decimal" if c in floats else ""}(CAST("{_identifier(c, path)}" AS '
                     f'{"DOUBLE" if c in floats else "VARCHAR"})) AS "{c}"' for c in columns)


def _register_decimal_text(connection: Any) -> None:
    """`eligib_decimal(x)`: a DOUBLE as the shortest decimal naming it, without an exponent (`5e-05` is
    read as 0.00005, as a patient file's JSON number would be), for Parquet and DuckDB float columns."""
    try:
        connection.create_function("eligib_decimal", _decimal_text, ["DOUBLE"], "VARCHAR")
    except Exception as exc:  # registered already on this connection (a second table)
        if "already" not in str(exc).lower():
            raise


def _decimal_text(value: float) -> str:
    text = repr(value)  # the shortest text that reads back as the same double
    if value != value or value in (float("inf"), float("-inf")):
        return text
    number = Decimal(text)
    return format(number, "f") if abs(number.adjusted()) <= 60 else text


def _relation(connection: Any, path: str, kind: str, table: str | None, converted: Path) -> Any:
    """The table as a DuckDB relation, every error a clean DiagnosticError."""
    import duckdb

    if not Path(path).is_file():
        raise table_error(path, "no such file", "give a CSV, Parquet, JSON Lines or DuckDB file")
    absolute = str(Path(path).absolute())  # what DuckDB opens: it would expand a leading `~`
    try:
        match kind:
            case "csv":
                return connection.read_csv(absolute, all_varchar=True, header=True)
            case "parquet":
                return connection.read_parquet(absolute)
            case "jsonl":
                return connection.read_csv(str(_jsonl_as_csv(path, converted)), all_varchar=True, header=True)
            case "duckdb":
                if table is None:
                    raise table_error(path, "a DuckDB database holds many tables", "name one with --table")
                connection.execute(f"ATTACH '{absolute.replace(chr(39), chr(39) * 2)}' AS data (READ_ONLY)")
                return connection.table(f'data."{_identifier(table, path)}"')
            case _:
                raise table_error(path, "unknown table format", "name it .csv, .parquet, .jsonl or .duckdb")
    except duckdb.Error as exc:
        raise table_error(path, f"cannot be read: {first_line(exc)}", "check the file's format") from None


def first_line(exc: Exception) -> str:
    """A DuckDB error's first line, for a message."""
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _identifier(name: str, path: str) -> str:
    if '"' in name or not name or len(name) > 200:
        raise table_error(path, f"a column or table name cannot be {name[:40]!r}", "use the protocol's fact names")
    return name


def _jsonl_as_csv(path: str, target: Path) -> Path:
    """JSON Lines -> a CSV of text cells (numbers keep their decimal digits); a value that is a list or
    an object (a history, a quantity object) is kept as its JSON text for the row's own reading."""
    rows = list(read_jsonl(path))
    names: dict[str, None] = {}
    for _, row in rows:
        names.update(dict.fromkeys(row))
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for _, row in rows:
            writer.writerow([cell_text(row.get(name)) for name in names])
    return target


def read_jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line; a line that is not a JSON object is a clean error."""
    if Path(path).stat().st_size > MAX_TABLE_BYTES:
        raise table_error(path, f"larger than {MAX_TABLE_BYTES:,} bytes", "split the file or use Parquet")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise table_error(f"{path}:{number}", "not UTF-8 text", "save the file as UTF-8") from None
            if not line.strip():
                continue
            value = jsonl_object(line)
            if not isinstance(value, dict):
                raise table_error(f"{path}:{number}", *value)
            yield number, value


def jsonl_object(line: str) -> dict[str, Any] | tuple[str, str]:
    """One line's patient object, or (what is wrong, hint)."""
    try:
        value = json.loads(line, parse_float=Decimal, parse_int=Decimal)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        return f"not JSON: {getattr(exc, 'msg', 'too deeply nested')}", "write one JSON object per line"
    if not isinstance(value, dict):
        return "not a JSON object", "write one object per patient per line"
    if nesting(value) > MAX_INPUT_NESTING:
        return "nested too deeply", "see docs/limits.md"
    return value


def cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list) or (isinstance(value, str) and (
            value[:1] in ("", '"', "[", "{") or value.strip().lower() in ("true", "false"))):
        return json.dumps(value, default=str)  # JSON text, read back as such: "" and "true" stay texts
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) <= 60:
        return format(value, "f")  # 1E+2 as 100: the plain form a cell states (no exponent)
    return str(value)


def check_columns(checked: CheckedProtocol, columns: list[str], path: str) -> None:
    """`id` is there; every other column is a declared fact (a history's column says its completeness)."""
    if "id" not in columns:
        raise table_error(path, "no `id` column", "the first column names each patient: id,age,...")
    for column in columns:
        if column != "id" and column not in checked.facts:
            hint = suggest(column, checked.facts) or f"see `eligib facts {checked.source.path}`"
            raise table_error(path, f"unknown fact `{column[:60]}`", hint, column)


def raw_facts(checked: CheckedProtocol, cells: Mapping[str, str | None],
              items: Mapping[str, list[dict[str, str | None]]],
              child_tables: set[str]) -> tuple[dict[str, Any], list[str]]:
    """A row's facts as a patient file writes them, for the engine's own reading (`parse`), and the
    problems found on the way (per column). A history is: written inline (JSON Lines); `complete` or
    `incomplete` in its column with its items from the child table; complete when the child table is
    given and the main table has no column for it; incomplete when its column is empty but items are
    listed; otherwise unknown."""
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for name, info in checked.facts.items():
        text = cells.get(name)
        if not isinstance(info.type, ListType):
            if text is not None:
                raw[name] = _json_value(text) if text[:1] in '[{"' else info.type.from_text(text)
            continue
        if text is not None and text[:1] in "[{":  # a history written inline (JSON Lines)
            raw[name] = _json_value(text)
            continue
        listed = [{key: _item_value(info.type, key, value) for key, value in item.items() if value is not None}
                  for item in items.get(name, [])]
        if text is not None:
            state = text.strip().lower()
            if state not in COMPLETENESS:
                problems.append(f"column `{name}`: `{text[:40]}` is not `complete` or `incomplete`")
            else:
                raw[name] = listed if COMPLETENESS[state] else {"items": listed, "complete": False}
        elif name in child_tables and name not in cells:
            raw[name] = listed
        elif listed:
            raw[name] = {"items": listed, "complete": False}
    return raw, problems


def _item_value(history: ListType, key: str, text: str) -> Any:
    fields = {f.name: f for f in history.fields}
    return fields[key].type.from_text(text) if key in fields else text


def _json_value(text: str) -> Any:
    """A cell holding JSON (an inline history, a quantity object, a JSON Lines text); the text itself when
    it is no JSON within the limits (the value's own reading then refuses it)."""
    try:
        value = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return text
    return value if nesting(value) <= MAX_INPUT_NESTING else text


def scratch_folder() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="eligib-screen-")
