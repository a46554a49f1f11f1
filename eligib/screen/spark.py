"""`eligib screen --engine spark`: the same screen, spread over a Spark cluster (`local[*]` by default).

Spark reads the tables, numbers the rows in table order, refuses a patient id given twice, and hands each
partition, every patient's history items beside the patient's row, to a task. The task screens its rows
with the very SQL and engine the DuckDB screen uses (an embedded DuckDB in the executor's Python worker,
eligib/screen/screening.py: `decide`), so both engines give every patient the same result; the rows SQL
leaves open are checked by the engine in that task, on the executor. The results (a few hundred bytes a
patient) come back to the driver for the attrition report and the results file.

Why not Spark SQL expressions: Spark's decimal arithmetic rounds a product that needs more than 38 digits
(`spark.sql.decimalOperations.allowPrecisionLoss`), and a second SQL dialect would be a second exactness
argument to keep true. One compiled program keeps one.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eligib.engine import Engine
from eligib.language.diagnostics import DiagnosticError, error
from eligib.limits import MAX_SCREEN_ROWS
from eligib.screen.residue import RESULT_COLUMNS
from eligib.screen.screening import (
    Screening,
    check_child_columns,
    decide,
    given_cells,
    history_of,
    refuse_id_facts,
)
from eligib.screen.tables import (
    DataSource,
    cell_expressions,
    cell_text,
    check_columns,
    discover,
    jsonl_object,
    scratch_folder,
    table_error,
)

RESULT_SCHEMA = ("row long, id string, verdict string, blocking array<string>, missing_facts array<string>, "
                 "paths array<string>, errors array<string>")
SETTLED, FAILURE = -1, -2  # marker rows: a task's count of rows SQL settled; a task's clean error
_ENGINES: dict[tuple[str, str], Engine] = {}  # per executor worker: the protocol, loaded once


@dataclass(frozen=True)
class Task:
    """What each partition's task needs, shipped to the executors (no file needs to be there)."""

    protocol_path: str
    protocol_text: str
    columns: tuple[str, ...]  # the main table's columns, `id` included
    histories: tuple[str, ...]  # the history given a child table, in the order of their `#items<k>` columns
    point: str | None


def screen_spark(engine: Engine, source: DataSource, master: str | None = None, at: str | None = None,
                 spark: Any = None) -> Screening:
    """Screen every patient of `source` on Spark: `spark` (a SparkSession) when given, else a session of
    its own on `master` (default `local[*]`), stopped at the end."""
    point = engine.timepoint(at)
    if point is not None:
        engine.at(point)
    refuse_id_facts(engine.checked)
    source = discover(engine.checked, source)
    if source.format == "duckdb" or Path(source.path).is_dir():
        kind = "a DuckDB database" if source.format == "duckdb" else "a folder of FHIR records"
        raise table_error(source.path, f"{kind} is screened with DuckDB", "leave out --engine spark")
    session, own = (spark, False) if spark is not None else _session(master)
    try:
        table, orphans = _run(engine, source, session, point)
    finally:
        if own:
            session.stop()
    return _collected(engine, table, orphans)


def _session(master: str | None) -> tuple[Any, bool]:
    """A SparkSession, and whether it is this run's own (stopped at the end): a session already running
    in this process (a notebook's) is used and left running."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DiagnosticError([error("missing-extra", "`--engine spark` needs PySpark", None,
                                     help="pip install 'eligib[spark]' (and Java 17)")]) from None
    running = SparkSession.getActiveSession()
    if running is not None:
        return running, False
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the executors' Python: this one, with eligib
    master = master or "local[*]"
    builder = SparkSession.builder.appName("eligib screen").master(master).config("spark.ui.showConsoleProgress",
                                                                                 "false")
    if master.startswith("local"):  # a few shuffle partitions for one machine, not a cluster's 200
        builder = builder.config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # no Java, a master that does not answer
        raise DiagnosticError([error("io", f"Spark did not start: {_first_line(exc)}", None,
                                     help="install Java 17, check --master, or leave out --engine spark")]) from None
    session.sparkContext.setLogLevel("ERROR")
    return session, True


def _run(engine: Engine, source: DataSource, session: Any, point: str | None) -> tuple[Any, dict[str, int]]:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException, PythonException

    try:
        main, columns = _read(session, source.path, source.format)
        check_columns(engine.checked, columns, source.path)
        main, columns = _with_given(main, columns, given_cells(engine, source, columns))
        children = []
        for name, path in sorted(source.histories.items()):
            child, child_columns = _read(session, path, DataSource(path).format)
            check_child_columns(history_of(engine, name, path), name, child_columns, path)
            children.append((name, _keyed(_numbered(child, "#item", path)[0], path)))
        rows, count = _numbered(main, "#row", source.path)
        if count > MAX_SCREEN_ROWS:
            raise table_error(source.path, f"{count:,} rows, more than the {MAX_SCREEN_ROWS:,} one run screens",
                              "split the table and screen each part")
        rows = _keyed(rows, source.path)
        _refuse_duplicates(rows, source.path)
        joined, orphans = _with_items(rows, children)
        task = Task(engine.checked.source.path, engine.checked.source.text, tuple(columns),
                    tuple(name for name, _ in children), point)
        return joined.mapInArrow(lambda batches: _partition(batches, task), RESULT_SCHEMA).toArrow(), orphans
    except PythonException:
        raise  # a fault of eligib's own in a task: not the table's
    except (PySparkException, Py4JError) as exc:  # a file Spark cannot read, a malformed CSV row
        raise table_error(source.path, f"Spark could not screen it: {_first_line(exc)}",
                          "check the tables' format") from None


def _with_given(frame: Any, columns: list[str], given: dict[str, str | None]) -> tuple[Any, list[str]]:
    """The facts given to every patient (`--fact`, `--facts`) as columns of text cells."""
    from pyspark.sql import functions as F

    for name, text in given.items():
        frame = frame.withColumn(name, F.lit(text).cast("string"))
    return frame, [*columns, *given]


def _read(session: Any, path: str, kind: str) -> tuple[Any, list[str]]:
    """The table as a DataFrame (CSV: text cells; Parquet: its own types; JSON Lines: text cells read
    exactly, as the DuckDB screen reads them) and its column names."""
    if "://" not in path and not Path(path).is_file():
        raise table_error(path, "no such file", "give a CSV, Parquet or JSON Lines file")
    where = path if "://" in path else str(Path(path).absolute())
    if "://" not in path and kind in ("csv", "jsonl"):
        _check_utf8(path)  # Spark's readers would put U+FFFD in silently
    match kind:
        case "csv":
            frame = session.read.options(header=True, inferSchema=False, escape='"', multiLine=True,
                                         mode="FAILFAST").csv(where)
        case "parquet":
            frame = session.read.parquet(where)
        case "jsonl":
            return _jsonl(session, where, path)
        case _:
            raise table_error(path, "unknown table format", "name it .csv, .parquet or .jsonl")
    for column in frame.columns:
        if "`" in column or '"' in column or not column:
            raise table_error(path, f"a column name cannot be {column[:40]!r}", "use the protocol's fact names")
    return frame, list(frame.columns)


def _check_utf8(path: str) -> None:
    """A local text table is UTF-8 throughout, else a clean error with its line (as DuckDB's screen says)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk.count(b"\n", 0, max(exc.start, 0))
                raise table_error(f"{path}:{line}", "not UTF-8 text", "save the file as UTF-8") from None
            lines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise table_error(f"{path}:{lines}", "not UTF-8 text", "save the file as UTF-8") from None


def _jsonl(session: Any, where: str, path: str) -> tuple[Any, list[str]]:
    """JSON Lines read by Python's exact reader on the executors: a first pass finds the first bad line
    and the columns (in order of first appearance), a second turns each line into text cells."""
    lines, _ = _numbered(session.read.text(where, lineSep="\n"), "#line", path)  # as Python splits lines
    found = lines.select("#line", "value").rdd.mapPartitions(_line_keys).collect()
    problems = sorted(item[1:] for item in found if item[0] == "!")
    if problems:
        number, message, hint = problems[0]
        raise table_error(f"{path}:{number}", message, hint)
    first_seen: dict[str, tuple[int, int]] = {}
    for _, key, number, position in found:
        first_seen[key] = min(first_seen.get(key, (number, position)), (number, position))
    names = sorted(first_seen, key=first_seen.__getitem__)
    for name in names:
        if "`" in name or '"' in name or not name:
            raise table_error(path, f"a column name cannot be {name[:40]!r}", "use the protocol's fact names")
    schema = ", ".join(["`#line` long"] + [f"`{name}` string" for name in names])
    cells = lines.select("#line", "value").mapInArrow(lambda batches: _line_cells(batches, names), schema).drop("#line")
    return cells, names


def _line_keys(rows: Iterator[Any]) -> Iterator[tuple[Any, ...]]:
    """Per partition: ("!", line, message, help) for each bad line; (".", key, line, position) for each
    key's first appearance in the partition. Blank lines are no rows, as in the DuckDB screen."""
    seen: set[str] = set()
    for number, text in rows:
        value = _line_object(number, text)
        if value is None:
            continue
        if not isinstance(value, dict):
            yield "!", number, *value
            continue
        for position, key in enumerate(value):
            if key not in seen:
                seen.add(key)
                yield ".", key, number, position


def _line_object(number: int, text: str) -> dict[str, Any] | tuple[str, str] | None:
    if not text.strip():
        return None
    return jsonl_object(text.removeprefix("\ufeff") if number == 1 else text)


def _line_cells(batches: Iterator[Any], names: list[str]) -> Iterator[Any]:
    import pyarrow as pa

    for batch in batches:
        numbers, rows = [], []
        for number, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
            value = _line_object(number, text)
            if isinstance(value, dict):  # every line was read once already: no other is left
                numbers.append(number)
                rows.append(value)
        columns = {"#line": pa.array(numbers, pa.int64())}
        columns.update({name: pa.array([cell_text(row.get(name)) for row in rows], pa.string()) for name in names})
        yield pa.RecordBatch.from_pydict(columns)


def _numbered(frame: Any, name: str, path: str) -> tuple[Any, int]:
    """The frame with `name` numbering its rows from 1 in table order, and how many there are.
    A partition's ids from monotonically_increasing_id share their top bits (the partition's index), so
    one count per partition turns them into consecutive numbers, all in the JVM."""
    from pyspark.sql import functions as F

    tagged = frame.withColumn("#id", F.monotonically_increasing_id())
    counts = sorted(tagged.groupBy(F.spark_partition_id().alias("p")).count().collect())
    shift, start = [], 1
    for partition, count in counts:
        shift += [F.lit(partition), F.lit(start - (partition << 33))]
        start += count
    if not counts:
        return tagged.withColumn(name, F.lit(None).cast("long")).drop("#id"), 0
    number = F.col("#id") + F.element_at(F.create_map(*shift), F.shiftright(F.col("#id"), 33))
    return tagged.withColumn(name, number).drop("#id"), start - 1


KEY_TYPES = ("string", "tinyint", "smallint", "int", "bigint", "decimal")  # Spark's text = DuckDB's for these


def _keyed(frame: Any, path: str) -> Any:
    """`#key`: the id as text, what a patient's row and its items are matched on; only for id types whose
    text Spark and DuckDB write alike (a double's does not: `1.2345678E7` against `12345678.0`), so an
    item is never matched to another patient's text, nor lost."""
    from pyspark.sql import functions as F

    kind = dict(frame.dtypes)["id"]
    if not kind.startswith(KEY_TYPES):
        raise table_error(path, f"an `id` column of type {kind} is not screened on Spark",
                          "store ids as text or whole numbers (or screen with DuckDB)", "id")
    return frame.withColumn("#key", F.col("id").cast("string"))


def _refuse_duplicates(rows: Any, path: str) -> None:
    from pyspark.sql import functions as F

    twice = (rows.where(F.col("#key").isNotNull()).groupBy("#key").count().where(F.col("count") > 1)
             .limit(1).collect())
    if twice:
        raise table_error(path, f"patient id `{str(twice[0][0])[:60]}` appears more than once",
                          "give each patient one row", "id")


def _with_items(rows: Any, children: list[tuple[str, Any]]) -> tuple[Any, dict[str, int]]:
    """Each patient's row with its items of each history as a list column `#items<k>`; and per history,
    how many child rows name no patient of the table."""
    from pyspark.sql import functions as F

    orphans: dict[str, int] = {}
    keys = rows.select("#key").where(F.col("#key").isNotNull())
    for index, (name, child) in enumerate(children):
        fields = [F.col(f"`{column}`") for column in child.columns if column != "#key"]
        items = child.groupBy("#key").agg(F.collect_list(F.struct(*fields)).alias(f"#items{index}"))
        rows = rows.join(items, on="#key", how="left")
        count = child.join(keys, on="#key", how="left_anti").count()
        if count:
            orphans[name] = count
    return rows.drop("#key"), orphans


def _partition(batches: Iterator[Any], task: Task) -> Iterator[Any]:
    """One task: its rows screened by DuckDB and the engine, as the DuckDB screen does."""
    import duckdb
    import pyarrow as pa

    received = list(batches)
    table = pa.Table.from_batches(received) if received else None
    if table is None or table.num_rows == 0:
        return
    connection, scratch = duckdb.connect(), scratch_folder()
    try:
        connection.register("partition", table)
        views = _partition_tables(connection, task)
        _, in_sql = decide(_engine(task), connection, list(task.columns), views, Path(scratch.name), 1, None,
                           task.point)
        results = connection.sql("SELECT row, id, verdict, blocking, missing_facts, paths, errors FROM results")
        yield from _cast(results.to_arrow_table()).to_batches()
        yield _marker(SETTLED, str(in_sql), [])
    except DiagnosticError as exc:
        yield _marker(FAILURE, "", [json.dumps([d.code, d.message, d.help]) for d in exc.found])
    finally:
        connection.close()
        scratch.cleanup()


def _partition_tables(connection: Any, task: Task) -> dict[str, str]:
    """`numbered` (the rows as text cells) and each history's child table, `child_<k>`, in table order."""
    types = {row[0]: str(row[1]) for row in connection.execute("DESCRIBE partition").fetchall()}
    columns = list(task.columns)
    cells = cell_expressions(connection, columns, [types[c] for c in columns], "the table")
    connection.execute(f'CREATE TABLE numbered AS SELECT "#row", {cells} FROM partition')
    views: dict[str, str] = {}
    for index, name in enumerate(task.histories):
        raw = f"items_raw_{index}"
        connection.execute(f'CREATE TABLE {raw} AS SELECT unnest(item) FROM (SELECT unnest("#items{index}") '
                           "AS item FROM partition)")  # one level: a field holding a struct stays one cell
        described = connection.execute(f"DESCRIBE {raw}").fetchall()
        names = [row[0] for row in described if row[0] != "#item"]
        kinds = {row[0]: str(row[1]) for row in described}
        cells = cell_expressions(connection, names, [kinds[n] for n in names], name)
        connection.execute(f'CREATE TABLE child_{index} AS SELECT {cells} FROM {raw} ORDER BY "#item"')
        views[name] = f"child_{index}"
    return views


def _engine(task: Task) -> Engine:
    """The protocol, loaded once per executor worker: from its file when the file there says the same
    (its imports resolve beside it), else from the text shipped."""
    key = (task.protocol_path, hashlib.sha256(task.protocol_text.encode()).hexdigest())
    if key not in _ENGINES:
        path = Path(task.protocol_path)
        same = path.is_file() and path.read_text(encoding="utf-8") == task.protocol_text
        _ENGINES[key] = Engine.from_file(str(path)) if same else Engine.from_text(task.protocol_text,
                                                                                   task.protocol_path)
    return _ENGINES[key]


def _cast(table: Any) -> Any:
    import pyarrow as pa

    text = pa.list_(pa.string())
    return table.cast(pa.schema([("row", pa.int64()), ("id", pa.string()), ("verdict", pa.string()),
                                 ("blocking", text), ("missing_facts", text), ("paths", text), ("errors", text)]))


def _marker(row: int, text: str, errors: list[str]) -> Any:
    import pyarrow as pa

    return _cast(pa.table({"row": [row], "id": [text], "verdict": [None], "blocking": [[]], "missing_facts": [[]],
                           "paths": [[]], "errors": [errors]})).to_batches()[0]


def _collected(engine: Engine, table: Any, orphans: dict[str, int]) -> Screening:
    """The tasks' results in a DuckDB `results` table on the driver, as the DuckDB screen leaves them."""
    import duckdb

    connection, scratch = duckdb.connect(), scratch_folder()
    try:
        connection.register("collected", table)
        failures = connection.execute(f"SELECT errors FROM collected WHERE row = {FAILURE} LIMIT 1").fetchall()
        if failures:
            raise DiagnosticError([error(code, message, None, help=hint)
                                   for code, message, hint in map(json.loads, failures[0][0])])
        in_sql = connection.execute(f"SELECT coalesce(sum(CAST(id AS BIGINT)), 0) FROM collected "
                                    f"WHERE row = {SETTLED}").fetchall()[0][0]
        connection.execute(f"CREATE TABLE results ({RESULT_COLUMNS})")
        connection.execute("INSERT INTO results SELECT * FROM collected WHERE row >= 0 ORDER BY row")
        connection.unregister("collected")
        rows = connection.execute("SELECT count(*) FROM results").fetchall()[0][0]
    except BaseException:
        connection.close()
        scratch.cleanup()
        raise
    return Screening(engine, connection, scratch, rows, in_sql, orphans)


def _first_line(exc: Exception) -> str:
    """What went wrong, in the words of the innermost Java exception when there is one (a Py4J error's
    own first line only names the call that failed)."""
    cause = getattr(exc, "java_exception", None)
    try:
        while cause is not None and cause.getCause() is not None:
            cause = cause.getCause()
        text = str(cause.toString() if cause is not None else exc).strip()
    except Exception:  # the JVM is gone: the Python side's words
        text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


