"""Histories in Z3: each history is `max_items` slots, an item each, and queries over them become terms.

A listed item fills a slot (its known fields fixed, its unknown fields free within their domains);
the remaining slots hold the items an unknown or possibly incomplete list may have, and are empty
when the list is complete. The declared `at most N items` bounds them (docs/language.md, Histories).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import z3

from eligib.language import ast
from eligib.logic.evaluate import literal_value
from eligib.values.types import NONE, EnumType, History, ListType
from eligib.values.z3terms import rational

if TYPE_CHECKING:
    from eligib.logic.compiler import FactVars, _Compiler

Term = Any  # a Z3 expression


@dataclass(frozen=True)
class SlotVars:
    """One possible item of a history: whether it exists, and its fields (each like a fact, with a copy)."""

    present: Term
    copy_present: Term
    fields: dict[str, FactVars]

    def pairs(self) -> list[tuple[Term, Term]]:
        """(variable, its copy) for everything about this item."""
        found = [(self.present, self.copy_present)]
        for field_vars in self.fields.values():
            found.append((field_vars.value, field_vars.copy_value))
            if field_vars.present is not None:
                found.append((field_vars.present, field_vars.copy_present))
        return found


@dataclass(frozen=True)
class HistoryVars:
    """A history as `max_items` slots: listed items fill the first ones, the rest exist only if the list
    is unknown or incomplete (docs/language.md, Histories: the bound is the declared `at most N items`)."""

    slots: tuple[SlotVars, ...]


def history_literals(history: HistoryVars, value: History) -> list[Term]:
    """Fix what is known of a history: its listed items and their known fields, and, when the list is
    complete, that no other item exists. The copy is fixed the same way: asking whether a history
    can matter varies only what is unknown about it."""
    assert len(value.items) <= len(history.slots), "compiled with fewer slots than the patient lists items"
    literals: list[Term] = []
    for index, slot in enumerate(history.slots):
        item = value.items[index] if index < len(value.items) else None
        for present, use_copy in ((slot.present, False), (slot.copy_present, True)):
            if item is None:
                if value.complete:
                    literals.append(z3.Not(present))
                continue
            literals.append(present)
            for field_vars, known in zip(slot.fields.values(), item, strict=True):
                if known is None:
                    continue
                var = field_vars.copy_value if use_copy else field_vars.value
                flag = field_vars.copy_present if use_copy else field_vars.present
                if known is NONE:
                    literals.append(z3.Not(flag))
                    continue
                if flag is not None:
                    literals.append(flag)
                literals.append(field_vars.info.type.z3_equals(var, known))
    return literals


class HistoryCompiler:
    """Compiles the history parts of expressions for a _Compiler (sharing its terms and context)."""

    def __init__(self, compiler: _Compiler) -> None:
        self.compiler = compiler

    def item_condition(self, where: ast.Expr | None, slot: SlotVars) -> Term:
        """The `where` for one slot (compiled afresh: its field names are that slot's variables)."""
        if where is None:
            return z3.BoolVal(True, self.compiler.ctx)
        saved = self.compiler.terms, self.compiler.presence, self.compiler.slots
        self.compiler.terms, self.compiler.presence, self.compiler.slots = {}, {}, (*saved[2], slot)
        try:
            return self.compiler.boolean(where)
        finally:
            self.compiler.terms, self.compiler.presence, self.compiler.slots = saved

    def query(self, node: ast.Query) -> Term:
        slots = self.compiler.histories[node.collection].slots
        conditions = [self.item_condition(node.where, slot) for slot in slots]
        matches = [z3.And(slot.present, condition) for slot, condition in zip(slots, conditions, strict=True)]
        match node.kind:
            case ast.QueryKind.ANY:
                return z3.Or(matches)
            case ast.QueryKind.NO:
                return z3.Not(z3.Or(matches))
            case ast.QueryKind.EVERY:
                return z3.And([z3.Implies(slot.present, c) for slot, c in zip(slots, conditions, strict=True)])
            case ast.QueryKind.COUNT:
                one, zero = z3.IntVal(1, self.compiler.ctx), z3.IntVal(0, self.compiler.ctx)
                return z3.Sum([z3.If(m, one, zero) for m in matches])
            case _:
                return self.aggregate(node, slots, matches)

    def aggregate(self, node: ast.Query, slots: tuple[SlotVars, ...], matches: list[Term]) -> Term:
        """min / max / sum of a field, or the field of the latest / earliest item (evaluate.aggregate)."""
        assert node.field is not None
        values = [self.field_term(slot.fields[node.field]) for slot in slots]
        if node.kind == ast.QueryKind.SUM:
            zero = z3.IntVal(0, self.compiler.ctx) if z3.is_int(values[0][0]) else rational(0, self.compiler.ctx)
            return z3.Sum([z3.If(z3.And(m, present), term, zero) for m, (term, present) in zip(matches, values,
                                                                                                strict=True)])
        latest_or_earliest = node.kind in (ast.QueryKind.LATEST, ast.QueryKind.EARLIEST)
        history = self.compiler.checked.facts[node.collection].type
        assert isinstance(history, ListType)
        keys = [self.field_term(slot.fields[history.order]) for slot in slots] if latest_or_earliest and \
            history.order is not None else values
        found = z3.BoolVal(False, self.compiler.ctx)
        best_key, (best, best_present) = keys[0][0], values[0]
        for m, (key, key_present), (value, value_present) in zip(matches, keys, values, strict=True):
            candidate = z3.And(m, key_present)
            better = {ast.QueryKind.MIN: key < best_key, ast.QueryKind.MAX: key > best_key,
                      ast.QueryKind.LATEST: key >= best_key, ast.QueryKind.EARLIEST: key < best_key}[node.kind]
            take = z3.And(candidate, z3.Or(z3.Not(found), better))
            best_key, best = z3.If(take, key, best_key), z3.If(take, value, best)
            best_present = z3.If(take, value_present, best_present)
            found = z3.Or(found, candidate)
        self.compiler._set_presence(node, [found, best_present] if latest_or_earliest else [found])
        return best

    def field_term(self, field_vars: FactVars) -> tuple[Term, Term]:
        """A slot field's term and the condition that it is not none."""
        present = field_vars.present if field_vars.present is not None else z3.BoolVal(True, self.compiler.ctx)
        return field_vars.info.type.z3_term(field_vars.value), present

    def lookup(self, node: ast.Call) -> Term:
        """`half_life(agent)`: the row of the key's value; `limit(age)`: the band the key falls in (the
        checker makes the rows cover every key, so the last row is the remaining case)."""
        key, present = self.compiler.value(node.args[0])
        table = self.compiler.checked.tables[node.function]
        ctx = self.compiler.ctx
        result = rational(literal_value(table.rows[-1].value), ctx)
        for row in reversed(table.rows[:-1]):
            if row.band:
                assert row.high is not None
                matches = key < rational(literal_value(row.high), ctx)
            else:
                key_type = self.compiler.checked.type_of(node.args[0])
                assert isinstance(key_type, EnumType)
                matches = key == key_type.values.index(row.key)
            result = z3.If(matches, rational(literal_value(row.value), ctx), result)
        self.compiler._set_presence(node, [present])
        return result
