"""A Z3 model read back as a patient: every fact's canonical value (as `decide` takes them)."""

from __future__ import annotations

from typing import Any

import z3

from eligib.values.types import NONE, History, Value


def canonical_values(compiled: Any, model: Any, use_copy: frozenset[str] = frozenset()) -> dict[str, Value]:
    """Every fact's value in the model, canonical (as `decide` takes them); `use_copy` facts read their copy."""
    values: dict[str, Value] = {}
    for name, fact in compiled.facts.items():
        copied = name in use_copy
        present = fact.copy_present if copied else fact.present
        var = fact.copy_value if copied else fact.value
        if present is not None and not z3.is_true(model.eval(present, model_completion=True)):
            values[name] = NONE
        else:
            values[name] = fact.info.type.from_z3(model.eval(var, model_completion=True))
    for name, history in compiled.histories.items():
        values[name] = _history_in(history, model, name in use_copy)
    return {name: values[name] for name in compiled.checked.facts if name in values}  # in declared order


def _history_in(history: Any, model: Any, copied: bool) -> History:
    """The items a model gives a history (the slots it makes present), as a complete list."""
    def read(flag: Any) -> bool:
        return bool(z3.is_true(model.eval(flag, model_completion=True)))

    items = []
    for slot in history.slots:
        if not read(slot.copy_present if copied else slot.present):
            continue
        item: list[Value] = []
        for field in slot.fields.values():
            present = field.copy_present if copied else field.present
            if present is not None and not read(present):
                item.append(NONE)
            else:
                item.append(field.info.type.from_z3(model.eval(field.copy_value if copied else field.value,
                                                               model_completion=True)))
        items.append(tuple(item))
    return History(tuple(items))
