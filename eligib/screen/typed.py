"""Table cells -> typed SQL columns: each fact's and each history field's cells read by its value type
(`sql_cell`) where written plainly, with a `plain` flag per row saying SQL holds everything it states.

`typed` has `row`, `id`, `v<i>` (value) and `n<i>` (none flag, for `or none` facts) per fact column,
`s<k>` per history (complete TRUE, incomplete FALSE, unknown NULL) and `plain`. Each history has an
items table, `items_<k>`: `item` (listed order), `id`, `f<j>`/`g<j>` per field, and `plain`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eligib.language.checked import CheckedProtocol
from eligib.screen.sql import FactColumn, HistoryTable
from eligib.screen.tables import table_error
from eligib.values.types import ListType, ParsedSpec


def read_cell(spec: ParsedSpec, cell: str, value_name: str, none_name: str) -> tuple[list[str], str, FactColumn | None]:
    """(select expressions, plain test, where the value is) for one column of cells."""
    reader = None if isinstance(spec.type, ListType) else spec.type.sql_cell(cell, spec)
    if reader is None:  # read by the engine only: plain when empty
        return [], f"{cell} IS NULL", None
    is_none = f"(lower({cell}) = 'none')" if spec.optional else "FALSE"
    # `none` (any case) is read first, as parse_value does: for a fact not declared `or none` it is an error,
    # even when an enumeration has a value of that name, so SQL leaves it to the engine
    plain_value = reader.plain if spec.optional else f"(lower({cell}) <> 'none' AND {reader.plain})"
    selected = [f"(CASE WHEN {cell} IS NULL OR {is_none} THEN NULL ELSE {reader.value} END) AS {value_name}"]
    none = None
    if spec.optional:
        selected.append(f"(CASE WHEN {cell} IS NULL THEN NULL ELSE {is_none} END) AS {none_name}")
        none = none_name
    return selected, f"({cell} IS NULL OR {is_none} OR {plain_value})", FactColumn(value_name, none, reader.factor)


def typed_tables(checked: CheckedProtocol, connection: Any, columns: list[str],
                 views: Mapping[str, str]) -> tuple[dict[str, FactColumn], dict[str, HistoryTable]]:
    """Create `typed` (from `numbered`: the cells with their row numbers) and the items tables; return
    where each fact and history is."""
    names = [name for name, info in checked.facts.items() if isinstance(info.type, ListType)]
    histories = {name: _items_table(checked, connection, name, index, views.get(name))
                 for index, name in enumerate(names)}
    selected = ['"#row"', '"id" AS id']  # `#row`: no fact can be named so
    plain = ['"id" IS NOT NULL']
    fact_columns: dict[str, FactColumn] = {}
    for index, name in enumerate(c for c in columns if c != "id"):
        info = checked.facts[name]
        if isinstance(info.type, ListType):
            continue
        expressions, plain_cell, column = read_cell(info, f'"{name}"', f"v{index}", f"n{index}")
        selected += expressions
        plain.append(plain_cell)
        if column is not None:
            fact_columns[name] = column
    for name, history in histories.items():
        selected.append(f"{_completeness(name, columns, views, history.table)} AS {history.complete}")
        if name in columns:
            plain.append(f"\"{name}\" IS NULL OR \"{name}\" IN ('complete', 'incomplete')")
        plain.append(f"NOT EXISTS (SELECT 1 FROM {history.table} AS items WHERE items.id = numbered.id "
                     "AND NOT items.plain)")
        history_type = checked.facts[name].type
        assert isinstance(history_type, ListType)
        limit = history_type.max_items
        plain.append(f'"id" NOT IN (SELECT id FROM {history.table} WHERE id IS NOT NULL GROUP BY id '
                     f"HAVING count(*) > {int(limit)})")  # too many items: the engine refuses the row
    selected.append(f"({' AND '.join(f'({p})' for p in plain)}) AS plain")
    connection.execute(f"CREATE TABLE typed AS SELECT {', '.join(selected)} FROM numbered")
    duplicate = connection.execute("SELECT id FROM typed WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1 "
                                   "LIMIT 1").fetchall()
    if duplicate:
        raise table_error("the table", f"patient id `{str(duplicate[0][0])[:60]}` appears more than once",
                          "give each patient one row", "id")
    return fact_columns, histories


def _completeness(name: str, columns: list[str], views: Mapping[str, str], items: str) -> str:
    """Complete TRUE, incomplete FALSE, unknown NULL: as tables.raw_facts reads a history."""
    listed = f"EXISTS (SELECT 1 FROM {items} AS items WHERE items.id = numbered.id)"
    if name not in columns:
        return "TRUE" if name in views else "CAST(NULL AS BOOLEAN)"
    cell = f'"{name}"'
    return (f"(CASE WHEN {cell} = 'complete' THEN TRUE WHEN {cell} = 'incomplete' THEN FALSE "
            f"WHEN {cell} IS NULL AND {listed} THEN FALSE END)")


def _items_table(checked: CheckedProtocol, connection: Any, name: str, index: int, view: str | None) -> HistoryTable:
    """`items_<index>`: the history's items typed (an empty table when no child table is given)."""
    history = checked.facts[name].type
    assert isinstance(history, ListType)
    fields = [f.name for f in history.fields]
    source = f'"{view}"' if view is not None else "(SELECT CAST(NULL AS VARCHAR) AS id, " + ", ".join(
        f'CAST(NULL AS VARCHAR) AS "{f}"' for f in fields) + " WHERE FALSE)"
    selected, plain = ["row_number() OVER () AS item", "id"], ["id IS NOT NULL"]
    columns: dict[str, FactColumn] = {}
    given = fields if view is None else _view_columns(connection, view)
    for number, spec in enumerate(history.fields):
        cell = f'"{spec.name}"' if spec.name in given else "NULL"
        expressions, plain_cell, column = read_cell(spec, cell, f"f{number}", f"g{number}")
        selected += expressions
        plain.append(plain_cell)
        if column is not None:
            columns[spec.name] = column
    table = f"items_{index}"
    connection.execute(f"CREATE TABLE {table} AS SELECT {', '.join(selected)}, "
                       f"({' AND '.join(f'({p})' for p in plain)}) AS plain FROM {source}")
    return HistoryTable(table, f"s{index}", columns)


def _view_columns(connection: Any, view: str) -> list[str]:
    return [row[0] for row in connection.execute(f'DESCRIBE "{view}"').fetchall()]
