"""Typing of dates and date-times: date arithmetic by calendar steps, date-time arithmetic by exact
durations, `within` windows, and the rule that a date never meets a date-time (docs/language.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eligib.language import ast
from eligib.language.checked import CALENDAR_CODES
from eligib.language.diagnostics import Diagnostic, error
from eligib.language.source import Span
from eligib.values.types import DATE, DATETIME, DateTimeType, DateType, NumType, ValueType
from eligib.values.units import DURATION, canonical_code, parse_unit

if TYPE_CHECKING:
    from eligib.language.expressions import ExpressionTyper

Type = ValueType
EXACT_CODES = ("h", "min", "s")  # with d and wk, the steps of a date-time
CALENDAR_WORDS = {"d": "days", "wk": "weeks", "mo": "months", "a": "years"}


class TimeTyper:
    """Types the date and date-time parts of expressions for an ExpressionTyper (whose state it shares)."""

    def __init__(self, typer: ExpressionTyper) -> None:
        self.typer = typer

    def report(self, diagnostic: Diagnostic) -> None:
        self.typer.report(diagnostic)

    def date_arithmetic(self, left: Type, operator: ast.Operator, right: Type, whole: ast.Arithmetic,
                        step: int) -> Type | None:
        right_node = whole.operands[step + 1]
        if isinstance(left, DateType) and isinstance(right, DateType) and operator == ast.Operator.SUBTRACT:
            return NumType(DURATION, "d", integer=True)
        if operator in (ast.Operator.ADD, ast.Operator.SUBTRACT) and isinstance(left, DateType) \
                and isinstance(right, NumType) and right.kind == DURATION \
                and isinstance(right_node, ast.QuantityLiteral) \
                and canonical_code(right_node.unit or "") in CALENDAR_CODES:
            self.calendar_step(whole.operands[0] if step == 0 else None, right_node)
            return DATE
        hours = isinstance(right_node, ast.QuantityLiteral) and canonical_code(right_node.unit or "") in EXACT_CODES
        self.report(error("type-mismatch", f"cannot apply `{operator}` to {left} and {right}", whole.span,
                          "not date arithmetic", help="a date has no time of day: declare the fact `datetime` to "
                          "step it by hours" if hours else "add or subtract a written duration such as `28 days` or "
                                                           "`6 months`"))
        return None

    def instant_arithmetic(self, left: Type, operator: ast.Operator, right: Type, whole: ast.Arithmetic,
                           step: int) -> Type | None:
        """Date-times move by exact durations (days of 24 hours, hours, minutes, seconds), never by months."""
        right_node = whole.operands[step + 1]
        if isinstance(left, DateTimeType) and isinstance(right, DateTimeType) and operator == ast.Operator.SUBTRACT:
            return NumType(DURATION, "h")
        if isinstance(left, DateType) or isinstance(right, DateType):
            self.report(date_and_datetime(whole.span, "not one kind of time point"))
            return None
        stepping = operator in (ast.Operator.ADD, ast.Operator.SUBTRACT) and isinstance(left, DateTimeType)
        if stepping and isinstance(right, NumType) and right.kind == DURATION \
                and isinstance(right_node, ast.QuantityLiteral):
            self.exact_step(right_node)
            return DATETIME
        self.report(error("type-mismatch", f"cannot apply `{operator}` to {left} and {right}", whole.span,
                          "not date-time arithmetic", help="add or subtract a written duration such as `72 hours`"))
        return None

    def exact_step(self, amount: ast.QuantityLiteral) -> None:
        """A step of a date-time: an exact duration in whole seconds; calendar months and years are refused."""
        code = canonical_code(amount.unit or "")
        if code in ("mo", "a"):
            self.report(error("unit-mismatch", f"`{amount.text}` is a calendar step, and date-times move by exact "
                              "durations", amount.span, "months and years step dates",
                              help="write days, hours or minutes (`72 hours`, `14 days`); or declare the facts "
                                   "as `date`"))
        elif (amount.value * parse_unit(amount.unit or "").factor).denominator != 1:
            self.report(error("unit-mismatch", f"`{amount.text}` is not a whole number of seconds", amount.span,
                              "date-times move by whole seconds", help="write whole minutes or seconds"))

    def within_types(self, expr: ast.Within) -> None:
        found = []
        for part, role in ((expr.subject, "the date before `within`"), (expr.anchor, "the anchor date")):
            found.append(self.typer.infer(part))
            if found[-1] is not None and not isinstance(found[-1], (DateType, DateTimeType)):
                self.report(error("type-mismatch", f"{role} must be a date or a date-time, but this is {found[-1]}",
                                  part.span, "not a date"))
        self.typer.state.types[expr.amount.nid] = NumType(DURATION, expr.amount.unit)
        if {type(kind) for kind in found} == {DateType, DateTimeType}:
            self.report(date_and_datetime(expr.span, "a date and a date-time"))
        elif isinstance(found[0], DateTimeType) or isinstance(found[1], DateTimeType):
            if canonical_code(expr.amount.unit or "") not in EXACT_CODES + CALENDAR_CODES:
                self.report(error("unit-mismatch", f"`{expr.amount.text}` is not a duration", expr.amount.span,
                                  "needs days, hours or minutes", help="write e.g. `within 72 hours before`"))
            else:
                self.exact_step(expr.amount)
        elif canonical_code(expr.amount.unit or "") not in CALENDAR_CODES:
            hours = canonical_code(expr.amount.unit or "") in EXACT_CODES
            self.report(error("unit-mismatch", f"`{expr.amount.text}` is not a calendar duration", expr.amount.span,
                              "needs days, weeks, months or years",
                              help="a date has no time of day: declare the facts as `datetime` to count hours"
                                   if hours else "write e.g. `within 6 months before`"))
        else:
            self.calendar_step(expr.anchor, expr.amount)

    def calendar_step(self, anchor: ast.Expr | None, amount: ast.QuantityLiteral) -> None:
        """Dates move by whole days; months and years are calendar steps taken first from a date fact."""
        code = canonical_code(amount.unit or "")
        days = amount.value * (7 if code == "wk" else 1)
        if code in ("d", "wk") and days.denominator != 1:
            self.report(error("unit-mismatch", f"`{amount.text}` is not a whole number of days", amount.span,
                              "dates move by whole days", help="write a whole number of days"))
        if code not in ("mo", "a"):
            return
        if amount.value.denominator != 1:
            self.report(error("unit-mismatch", f"`{amount.text}` is not a whole number of {CALENDAR_WORDS[code]}",
                              amount.span, "calendar months and years must be whole",
                              help="use whole days for fractions"))
        if not (isinstance(anchor, ast.DateLiteral)
                or (isinstance(anchor, ast.NameRef) and anchor.name in self.typer.state.facts
                    and anchor.nid not in self.typer.state.field_refs)):
            self.report(error("calendar-anchor", f"`{amount.text}` must be counted from a date fact or a date",
                              amount.span, "months and years step from a date fact",
                              help="put the month or year step first, right after a date fact: "
                                   "`screening_date - 6 months - 2 days`"))


def date_and_datetime(span: Span | None, label: str) -> Diagnostic:
    """A date meets a date-time: refused, since the calendar day of an instant depends on the time zone."""
    return error("date-and-datetime", "a date and a date-time cannot be compared or combined", span, label,
                 help="a date has no time of day and a date-time's day depends on the time zone: declare both "
                      "facts `datetime` (or both `date`)")
