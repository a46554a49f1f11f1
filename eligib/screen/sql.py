"""A checked protocol as SQL over a table of patients, one row each: every criterion's (applies, passes)
and every named path's truth as a three-valued column, NULL for unknown.

SQL's NULL logic is Kleene's, the logic of the engine's fast path (logic/kleene.py), so a row whose
criteria are all TRUE or FALSE here is decided exactly as `eligib check` decides it. Each case below
mirrors one case of kleene.py. Exactness: numbers are exact DECIMALs with a static rational factor
(canonical value = SQL value x factor), compared by cross-multiplication with whole numbers, never
divided; dates are DATEs shifted by SQL's calendar months, which clamp to the month's end as the
language does; a history's questions are aggregates over its items' table. What SQL cannot state
exactly (a quotient, a date-time, min/max/sum of a field) is compiled as unknown (NULL) and the
column is marked inexact: a NULL there means "ask the engine", so the row goes
to the solver. Replacing a part by unknown never turns a Kleene answer wrong, only less definite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd, lcm
from typing import assert_never

from eligib.language import ast
from eligib.language.checked import CheckedProtocol, NamedPath
from eligib.logic.evaluate import literal_value
from eligib.values.types import BoolType, DateTimeType, DateType, NumType
from eligib.values.types.base import sql_number, sql_text
from eligib.values.types.date import sql_date
from eligib.values.units import canonical_code

UNKNOWN = "CAST(NULL AS BOOLEAN)"
_OPERATORS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "=", "!=": "<>"}


@dataclass(frozen=True)
class FactColumn:
    """Where a fact's value is in the table: its column, its none flag (optional facts), its factor."""

    value: str
    none: str | None = None
    factor: Fraction = Fraction(1)


@dataclass(frozen=True)
class Sql:
    """A compiled expression: `text` is the value (NULL when unknown or none); `none` is TRUE when the value
    is none, FALSE when known, NULL when unknown, or None when it can never be none; numbers stand for
    `text` x `factor` (positive)."""

    text: str
    none: str | None = None
    factor: Fraction = Fraction(1)


@dataclass(frozen=True)
class HistoryTable:
    """Where a history is: its items' table (`id`, `item` in listed order, one column per field), and
    the main table's column saying whether it is complete (TRUE), incomplete (FALSE) or unknown (NULL)."""

    table: str
    complete: str
    fields: Mapping[str, FactColumn]


class Unsupported(Exception):
    """A construct SQL does not evaluate exactly here: compiled as unknown, the column marked inexact."""


@dataclass
class Column:
    """One compiled column: its SQL, and whether it may say unknown where the engine would know."""

    sql: str
    exact: bool


@dataclass
class CompiledSql:
    """Every criterion as two columns, every assumption and every named path (`criterion.path.sub`) as one."""

    applies: dict[str, Column] = field(default_factory=dict)
    passes: dict[str, Column] = field(default_factory=dict)
    assumptions: list[Column] = field(default_factory=list)
    paths: dict[str, Column] = field(default_factory=dict)
    side_tables: dict[str, str] = field(default_factory=dict)  # name -> SQL, joined to `typed` by `row`


def compile_protocol(checked: CheckedProtocol, columns: Mapping[str, FactColumn],
                     histories: Mapping[str, HistoryTable] | None = None) -> CompiledSql:
    """The protocol's criteria, assumptions and named paths as SQL over `columns` and `histories` (facts
    absent from both are unknown for every row)."""
    compiler = SqlCompiler(checked, columns, histories or {})
    compiled = CompiledSql()
    for cid, criterion in checked.criteria.items():
        compiled.applies[cid], compiled.passes[cid] = compiler.criterion(criterion)
        for path in _walk(checked.paths[cid]):
            compiled.paths[f"{cid}.{path.dotted}"] = compiler.column(path.item.body)
    compiled.assumptions = [compiler.column(a.body) for a in checked.assumptions.values()]
    compiled.side_tables = {name: table for table, name in compiler.side_tables.items()}
    return compiled


def _walk(paths: tuple[NamedPath, ...]) -> list[NamedPath]:
    return [found for path in paths for found in (path, *_walk(path.subpaths))]


class SqlCompiler:
    def __init__(self, checked: CheckedProtocol, columns: Mapping[str, FactColumn],
                 histories: Mapping[str, HistoryTable]) -> None:
        self.checked = checked
        self.columns = columns
        self.histories = histories
        self._inexact = False
        self._item: HistoryTable | None = None  # the history whose item a query's `where` reads
        self.side_tables: dict[str, str] = {}  # a query's side table's SQL -> its name

    def column(self, node: ast.Expr) -> Column:
        """A condition as a column, with whether every part of it was compiled exactly."""
        self._inexact = False
        sql = self.condition(node)
        return Column(sql, not self._inexact)

    def criterion(self, criterion: ast.Criterion) -> tuple[Column, Column]:
        """(applies, passes) as kleene.py's criterion outcome: not applying passes; an exclusion passes when
        its body fails."""
        self._inexact = False
        applies = "TRUE" if criterion.guard is None else self.condition(criterion.guard)
        guard_exact = not self._inexact
        body = self.condition(criterion.body)
        holds = body if criterion.kind == ast.CriterionKind.INCLUSION else f"(NOT {body})"
        passes = holds if criterion.guard is None else f"((NOT {applies}) OR {holds})"
        return Column(applies, guard_exact), Column(passes, not self._inexact)

    def condition(self, node: ast.Expr) -> str:
        """A truth, none counting as false; a part SQL cannot state is unknown."""
        try:
            value = self.expr(node)
        except Unsupported:
            self._inexact = True
            return UNKNOWN
        return value.text if value.none is None else f"(CASE WHEN {value.none} THEN FALSE ELSE {value.text} END)"

    def expr(self, node: ast.Expr) -> Sql:  # one case per node kind, as in kleene.py
        match node:
            case ast.BoolLiteral():
                return Sql("TRUE" if node.value else "FALSE")
            case ast.QuantityLiteral():
                value = literal_value(node)
                return _constant(value)
            case ast.DateLiteral():
                return Sql(sql_date(node.value.toordinal()))
            case ast.NameRef() if node.nid in self.checked.field_refs:
                if self._item is None or node.name not in self._item.fields:
                    raise Unsupported("a field of an outer query's item")
                field_column = self._item.fields[node.name]
                return Sql(field_column.value, field_column.none, field_column.factor)
            case ast.NameRef() if node.name in self.checked.definitions:
                return self.expr(self.checked.definitions[node.name].body)
            case ast.NameRef():
                return self._fact(node.name)
            case ast.Call():
                return self._call(node)
            case ast.Not():
                return Sql(f"(NOT {self.condition(node.operand)})")
            case ast.And():
                return Sql("(" + " AND ".join(self.condition(op) for op in node.operands) + ")")
            case ast.Or():
                return Sql("(" + " OR ".join(self.condition(op) for op in node.operands) + ")")
            case ast.Compare():
                return self._compare(node)
            case ast.Arithmetic():
                return self._arithmetic(node)
            case ast.Negate():
                operand = self._numeric(node.operand)
                return Sql(f"(- {operand.text})", operand.none, operand.factor)
            case ast.Conditional():
                return self._conditional(node)
            case ast.Implies():
                return Sql(f"((NOT {self.condition(node.antecedent)}) OR {self.condition(node.consequent)})")
            case ast.IsValue():
                return self._membership(node.subject, (node.value,), node.negated)
            case ast.InSet():
                return self._membership(node.subject, node.values, node.negated)
            case ast.IsRanked():
                enum = self.checked.types[node.subject.nid]
                return self._membership(node.subject, node.among(enum.values), False)  # type: ignore[attr-defined]
            case ast.InValueSet():
                return self._membership(node.subject, self.checked.value_sets[node.value_set].members, node.negated)
            case ast.IsNone():
                return self._is_none(node)
            case ast.Within():
                return self._within(node)
            case ast.Block():
                return self._block(node)
            case ast.Query():
                return self._query(node)
            case _:
                assert_never(node)

    def _fact(self, name: str) -> Sql:
        column = self.columns.get(name)
        if column is None:
            if name in self.checked.facts and isinstance(self.checked.facts[name].type, DateTimeType):
                raise Unsupported("a date-time")
            kind = self.checked.facts[name].type
            typed = "DATE" if isinstance(kind, DateType) else "DECIMAL(38, 18)" if isinstance(kind, NumType) else \
                "BOOLEAN" if isinstance(kind, BoolType) else "VARCHAR"
            none = "CAST(NULL AS BOOLEAN)" if self.checked.facts[name].optional else None
            return Sql(f"CAST(NULL AS {typed})", none, kind.factor if isinstance(kind, NumType) else Fraction(1))
        return Sql(column.value, column.none, column.factor)

    def _numeric(self, node: ast.Expr) -> Sql:
        """A number-valued operand; date-times stay out of SQL."""
        if isinstance(self.checked.type_of(node), DateTimeType):
            raise Unsupported("a date-time")
        return self.expr(node)

    def _call(self, node: ast.Call) -> Sql:
        table = self.checked.tables.get(node.function)
        if table is not None:
            return self._table(table, self.expr(node.args[0]))
        args = [self._numeric(arg) for arg in node.args]
        scaled, factor = _common_scale(args)
        pick = "least" if node.function == "min" else "greatest"  # both skip NULLs: unknown is decided apart
        unknown = " OR ".join(f"{arg.text} IS NULL" for arg in args)
        return Sql(f"(CASE WHEN {unknown} THEN NULL ELSE {pick}({', '.join(scaled)}) END)", _any_none(args), factor)

    def _table(self, table: ast.Table, key: Sql) -> Sql:
        """A lookup: the first row that fits, as table_value reads it; none and unknown keys pass through."""
        values = [literal_value(row.value) for row in table.rows]
        factor = Fraction(1, lcm(*(v.denominator for v in values)))
        cases = []
        for row, value in zip(table.rows, values, strict=True):
            result = _whole(value / factor)
            if not row.band:
                cases.append(f"WHEN {key.text} = {sql_text(str(row.key))} THEN {result}")
            elif row.high is None:
                cases.append(f"WHEN {key.text} IS NOT NULL THEN {result}")
            else:
                cases.append(f"WHEN {_compare_scaled(key, '<', _constant(literal_value(row.high)))} THEN {result}")
        return Sql(f"(CASE {' '.join(cases)} END)", key.none, factor)

    def _compare(self, node: ast.Compare) -> Sql:
        numeric = all(isinstance(self.checked.type_of(op), NumType) for op in node.operands)
        if not numeric and any(isinstance(self.checked.type_of(op), DateTimeType) for op in node.operands):
            raise Unsupported("a date-time")
        operands = [self.expr(op) for op in node.operands]
        pairs = []
        for op, left, right in zip(node.operators, operands, operands[1:], strict=False):
            sql_op = _OPERATORS[op.value]
            test = _compare_scaled(left, sql_op, right) if numeric else \
                f"({left.text} {sql_op} {right.text})"
            nones = [s.none for s in (left, right) if s.none is not None]
            pairs.append(f"(CASE WHEN {' OR '.join(nones)} THEN FALSE ELSE {test} END)" if nones else test)
        return Sql(pairs[0] if len(pairs) == 1 else "(" + " AND ".join(pairs) + ")")

    def _arithmetic(self, node: ast.Arithmetic) -> Sql:
        first_type = self.checked.type_of(node.operands[0])
        if isinstance(first_type, DateTimeType):
            raise Unsupported("a date-time")
        result = self.expr(node.operands[0])
        is_date = isinstance(first_type, DateType)
        for op, operand_node in zip(node.operators, node.operands[1:], strict=True):
            if is_date and isinstance(self.checked.type_of(operand_node), DateType):
                other = self.expr(operand_node)  # date - date: a duration in seconds, whole days
                result = Sql(f"date_diff('day', {other.text}, {result.text})", _any_none([result, other]),
                             Fraction(86400))
                is_date = False
            elif is_date:
                assert isinstance(operand_node, ast.QuantityLiteral)
                amount = operand_node.value if op == ast.Operator.ADD else -operand_node.value
                result = Sql(_shift(result.text, amount, canonical_code(operand_node.unit or "")), result.none)
            else:
                result = _number_step(op, result, self._numeric(operand_node))
        return result

    def _conditional(self, node: ast.Conditional) -> Sql:
        condition = self.condition(node.condition)
        then, otherwise = self.expr(node.then), self.expr(node.otherwise)
        if then.none is not None or otherwise.none is not None:
            raise Unsupported("a conditional value that may be none")
        if isinstance(self.checked.type_of(node.then), NumType):
            (first, second), factor = _common_scale([then, otherwise])
        else:
            (first, second), factor = (then.text, otherwise.text), Fraction(1)
        return Sql(f"(CASE WHEN {condition} THEN {first} WHEN NOT {condition} THEN {second} "
                   f"WHEN {first} = {second} THEN {first} END)", None, factor)

    def _membership(self, subject_node: ast.Expr, values: tuple[str, ...] | frozenset[str], negated: bool) -> Sql:
        subject = self.expr(subject_node)
        members = ", ".join(sql_text(v) for v in sorted(values))
        test = f"({subject.text} {'NOT ' if negated else ''}IN ({members}))" if members else \
            f"(CASE WHEN {subject.text} IS NULL THEN NULL ELSE {'TRUE' if negated else 'FALSE'} END)"
        if subject.none is None:
            return Sql(test)
        return Sql(f"(CASE WHEN {subject.none} THEN {'TRUE' if negated else 'FALSE'} ELSE {test} END)")

    def _is_none(self, node: ast.IsNone) -> Sql:
        subject = self.expr(node.subject)
        if subject.none is None:  # never none: false when known, unknown when unknown
            return Sql(f"(CASE WHEN {subject.text} IS NULL THEN NULL ELSE {'TRUE' if node.negated else 'FALSE'} END)")
        return Sql(f"(NOT {subject.none})" if node.negated else subject.none)

    def _within(self, node: ast.Within) -> Sql:
        if isinstance(self.checked.type_of(node.anchor), DateTimeType):
            raise Unsupported("a date-time window")
        date, anchor = self.expr(node.subject), self.expr(node.anchor)
        code = canonical_code(node.amount.unit or "")
        amount = node.amount.value
        if node.direction == ast.Direction.BEFORE:
            low, high = _shift(anchor.text, -amount, code), anchor.text
        else:
            low, high = anchor.text, _shift(anchor.text, amount, code)
        test = f"({date.text} BETWEEN {low} AND {high})"
        nones = [s.none for s in (date, anchor) if s.none is not None]
        return Sql(f"(CASE WHEN {' OR '.join(nones)} THEN FALSE ELSE {test} END)" if nones else test)

    def _block(self, node: ast.Block) -> Sql:
        items = [self.condition(item.body) for item in node.items]
        match node.kind:
            case ast.BlockKind.ALL:
                return Sql("(" + " AND ".join(items) + ")")
            case ast.BlockKind.ANY:
                return Sql("(" + " OR ".join(items) + ")")
            case ast.BlockKind.AT_LEAST:
                true = " + ".join(f"CAST(coalesce({item}, FALSE) AS INTEGER)" for item in items)
                open_ = " + ".join(f"CAST({item} IS NULL AS INTEGER)" for item in items)
                return Sql(f"(CASE WHEN {true} >= {node.count} THEN TRUE "
                           f"WHEN {true} + {open_} < {node.count} THEN FALSE END)")
            case _:
                assert_never(node.kind)


    def _query(self, node: ast.Query) -> Sql:
        """A question about a history's items, as kleene.py's query: aggregates over the items' table
        (each its own scalar subquery, combined outside: a subquery's aggregate over no items is NULL
        once SQL decorrelates it, so each is given its empty value); unknown when the history is, or
        when an incomplete list or an open item could change the answer."""
        history = self.histories.get(node.collection)
        if history is None or self._item is not None:
            raise Unsupported("a history without a table, or a query inside a query")
        self._item = history
        try:
            where = "TRUE" if node.where is None else self.condition(node.where)
        finally:
            self._item = None
        items = _Items(history)
        return self._side(items, self._answer(node, history, items, where))

    def _side(self, items: _Items, answer: Sql) -> Sql:
        """Register the query's side table (one per distinct table) and point the answer at it."""
        table = items.table()
        name = self.side_tables.setdefault(table, f"q{len(self.side_tables)}")
        return Sql(answer.text.replace("{side}", name), answer.none.replace("{side}", name) if answer.none else None,
                   answer.factor)

    def _answer(self, node: ast.Query, history: HistoryTable, items: _Items, where: str) -> Sql:
        unknown = f"{history.complete} IS NULL"
        open_ended = f"(NOT {history.complete} OR {items.any(f'{where} IS NULL')})"
        match node.kind:
            case ast.QueryKind.ANY | ast.QueryKind.NO:
                found = f"(CASE WHEN {unknown} THEN NULL WHEN {items.any(f'{where} IS TRUE')} THEN TRUE " \
                        f"WHEN {open_ended} THEN NULL ELSE FALSE END)"
                return Sql(found if node.kind == ast.QueryKind.ANY else f"(NOT {found})")
            case ast.QueryKind.EVERY:
                return Sql(f"(CASE WHEN {unknown} THEN NULL WHEN {items.any(f'{where} IS FALSE')} THEN FALSE "
                           f"WHEN {open_ended} THEN NULL ELSE TRUE END)")
            case ast.QueryKind.COUNT:
                counted = items.count(f"{where} IS TRUE")
                return Sql(f"(CASE WHEN {unknown} OR {open_ended} THEN NULL ELSE {counted} END)")
            case ast.QueryKind.LATEST | ast.QueryKind.EARLIEST:
                return self._ordered(node, history, items, where, f"{unknown} OR {open_ended}")
            case ast.QueryKind.MIN | ast.QueryKind.MAX | ast.QueryKind.SUM:
                raise Unsupported("an aggregate of a field")
            case _:
                assert_never(node.kind)

    def _ordered(self, node: ast.Query, history: HistoryTable, items: _Items, where: str, unknown: str) -> Sql:
        """`latest(field of h where ...)`: the field of the matching item last in order (ties: listed last;
        `earliest`: first in order, ties listed first); unknown when an order is; none when none is dated."""
        list_type = self.checked.facts[node.collection].type
        order_name = getattr(list_type, "order", None)
        if node.field is None or order_name is None or order_name not in history.fields \
                or node.field not in history.fields:
            raise Unsupported("an aggregate without an order, or of a field SQL does not read (a date-time)")
        order, value = history.fields[order_name], history.fields[node.field]
        chosen = f"{where} IS TRUE"
        order_none = order.none or "FALSE"
        dated = f"{chosen} AND NOT coalesce({order_none}, FALSE)"
        pick = "arg_max_null" if node.kind == ast.QueryKind.LATEST else "arg_min_null"
        key = f"({order.value}, items.item)"
        unknown += " OR " + items.any(f"{chosen} AND {order.value} IS NULL AND {order_none} IS NOT TRUE")
        picked = items.value(f"{pick}({value.value}, {key}) FILTER (WHERE {dated})")
        picked_none = items.value(f"{pick}({value.none or 'FALSE'}, {key}) FILTER (WHERE {dated})")
        return Sql(f"(CASE WHEN {unknown} THEN NULL ELSE {picked} END)",
                   f"(CASE WHEN {unknown} THEN NULL WHEN {items.count(dated)} = 0 THEN TRUE ELSE {picked_none} END)",
                   value.factor)


class _Items:
    """The aggregates one query needs over a patient's items of a history: gathered into one side table,
    `q<k>` (a row per patient that has items; a patient without any has no row, so each aggregate is
    read with its empty value). A GROUP BY join, not correlated subqueries: DuckDB plans those slowly."""

    def __init__(self, history: HistoryTable) -> None:
        self.history = history
        self.aggregates: list[str] = []
        self.name = ""  # set once the side table is registered

    def value(self, aggregate: str) -> str:
        self.aggregates.append(aggregate)
        return f"{{side}}.a{len(self.aggregates) - 1}"

    def any(self, condition: str) -> str:
        return f"coalesce({self.value(f'bool_or({condition})')}, FALSE)"

    def count(self, condition: str) -> str:
        return f"coalesce({self.value(f'count_if({condition})')}, 0)"

    def table(self) -> str:
        columns = ", ".join(f"{aggregate} AS a{index}" for index, aggregate in enumerate(self.aggregates))
        return (f'SELECT typed."#row" AS "#row", {columns} FROM typed JOIN {self.history.table} AS items '
                'ON items.id = typed.id GROUP BY typed."#row"')


def _constant(value: Fraction) -> Sql:
    return Sql(_whole(Fraction(value.numerator)), None, Fraction(1, value.denominator))


def _whole(number: Fraction) -> str:
    """A whole number SQL holds exactly (HUGEINT); a larger one is left to the engine."""
    if abs(number) >= 10**36:
        raise Unsupported("a number beyond SQL's whole numbers")
    return sql_number(number)


def _is_constant(value: Sql) -> bool:
    return value.text.lstrip("-").replace("::HUGEINT", "").isdigit()


def _any_none(values: list[Sql]) -> str | None:
    nones = [v.none for v in values if v.none is not None]
    return "(" + " OR ".join(nones) + ")" if nones else None


def _scale(text: str, multiplier: Fraction) -> str:
    assert multiplier.denominator == 1 and multiplier > 0
    return text if multiplier == 1 else _try(f"{text} * {_whole(multiplier)}")


def _try(arithmetic: str) -> str:
    """Arithmetic whose overflow is unknown (NULL), never an error. SQL cannot guard a history's subquery
    that way (TRY refuses one), so arithmetic on one is left to the engine."""
    if "SELECT" in arithmetic:
        raise Unsupported("arithmetic on a history's answer")
    return f"TRY({arithmetic})"


def _common_scale(values: list[Sql]) -> tuple[list[str], Fraction]:
    """The values over one factor (the largest that divides each factor a whole number of times)."""
    numerator = 0
    for value in values:
        numerator = gcd(numerator, value.factor.numerator)
    factor = Fraction(numerator, lcm(*(v.factor.denominator for v in values)))
    return [_scale(v.text, v.factor / factor) for v in values], factor


def _compare_scaled(left: Sql, op: str, right: Sql) -> str:
    """`left x f1 OP right x f2` with whole multipliers (factors are positive)."""
    (first, second), _ = _common_scale([left, right])
    return f"({first} {op} {second})"


def _number_step(op: ast.Operator, left: Sql, right: Sql) -> Sql:
    none = _any_none([left, right])
    match op:
        case ast.Operator.ADD | ast.Operator.SUBTRACT:
            (first, second), factor = _common_scale([left, right])
            sign = "+" if op == ast.Operator.ADD else "-"
            return Sql(_try(f"{first} {sign} {second}"), none, factor)
        case ast.Operator.MULTIPLY:
            if not (_is_constant(left) or _is_constant(right)):  # DECIMAL x DECIMAL keeps too few whole digits
                raise Unsupported("a product of two values")
            return Sql(_try(f"{left.text} * {right.text}"), none, left.factor * right.factor)
        case ast.Operator.DIVIDE:
            raise Unsupported("a quotient")
        case _:
            assert_never(op)


def _shift(date: str, amount: Fraction, code: str) -> str:
    """A DATE moved by a written calendar duration, as calendar.shift_date moves a day number."""
    if code == "d":
        return f"({date} + {int(amount)})"
    if code == "wk":
        return f"({date} + {int(amount * 7)})"
    months = int(amount) if code == "mo" else int(amount) * 12
    if code not in ("mo", "a"):
        raise Unsupported(f"a shift in {code}")
    return f"CAST({date} + INTERVAL ({months}) MONTH AS DATE)"
