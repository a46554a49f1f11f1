"""Independent parts of a compiled protocol, so that `verify` asks each question of the part it is about.

Constraints that share no variable are independent: their conjunction is satisfiable exactly when
each is, and a model of it is the union of models of each. Once `verify` knows one eligible patient
(the base), a question about a criterion needs only the constraints linked to it through shared
variables; every other fact of a witness is the base patient's, which already meets every other
criterion and assumption. Each question then costs what its part costs, and `verify` grows
with the number of criteria, not with its square (issue 11).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import z3

Term = Any  # a Z3 expression


class Parts:
    """The compiled protocol's constraints grouped by shared variables, with one solver per part set."""

    def __init__(self, compiled: Any, tracks: dict[str, Term]) -> None:
        self.compiled = compiled
        self.tracks = tracks
        self._constants: dict[int, tuple[Term, frozenset[str]]] = {}
        self._parent: dict[str, str] = {}
        self._solvers: dict[frozenset[str], Any] = {}
        self._facts: dict[frozenset[str], frozenset[str]] = {}
        variables_of = _fact_variables(compiled)
        for variables in variables_of.values():
            self._join(variables)  # a fact's variables stay together: a witness reads them from one model
        self.domains = [(term, self._join(self.constants(term))) for term in compiled._base]
        self.assumptions = [(term, self._join(self.constants(term))) for _, term in compiled.assumptions]
        self.criteria = {cid: self._join(self.constants(term)) for cid, term in compiled.passes.items()}
        self.fact_roots = {name: self._root(next(iter(variables))) if variables else None
                           for name, variables in variables_of.items()}

    def scope(self, formulas: Iterable[Term]) -> frozenset[str]:
        """The parts the formulas touch (each named by a representative variable)."""
        return frozenset(self._root(name) for formula in formulas for name in self.constants(formula))

    def criteria_in(self, scope: frozenset[str], among: Iterable[str]) -> list[str]:
        """The criteria among `among` that lie in the scope's parts."""
        return [cid for cid in among if self._root_of(self.criteria[cid]) in scope]

    def facts_in(self, scope: frozenset[str]) -> frozenset[str]:
        """The facts whose variables lie in the scope's parts (the others keep the base patient's values);
        kept per scope, like its solver: most questions about one criterion share one."""
        found = self._facts.get(scope)
        if found is None:
            found = self._facts[scope] = frozenset(name for name, root in self.fact_roots.items()
                                                   if root is not None and self._root(root) in scope)
        return found

    def solver(self, scope: frozenset[str]) -> Any:
        """A solver holding the constraints of the scope's parts only: domains, assumptions, and each of
        their criteria's tracking literal (for unsat cores). Kept for the run: one per part set asked."""
        found = self._solvers.get(scope)
        if found is None:
            found = self._solvers[scope] = z3.Solver(ctx=self.compiled.ctx)
            for term, root in [*self.domains, *self.assumptions]:
                if self._root_of(root) in scope:
                    found.add(term)
            for cid in self.criteria_in(scope, self.criteria):
                found.add(z3.Implies(self.tracks[cid], self.compiled.passes[cid]))
        return found

    def constants(self, term: Term) -> frozenset[str]:
        """The names of the uninterpreted constants in a term. Memoised per subterm (terms share much),
        each entry keeping its term alive: Z3 reuses the id of a freed term. Iterative: a long chain of
        nested terms must not exhaust Python's stack."""
        stack = [term]
        while stack:
            top = stack[-1]
            if top.get_id() in self._constants:
                stack.pop()
                continue
            if z3.is_const(top):
                named = top.decl().kind() == z3.Z3_OP_UNINTERPRETED
                self._constants[top.get_id()] = (top, frozenset((top.decl().name(),)) if named else frozenset())
                stack.pop()
                continue
            children = top.children() if z3.is_app(top) or z3.is_quantifier(top) else []
            waiting = [child for child in children if child.get_id() not in self._constants]
            if waiting:
                stack.extend(waiting)
                continue
            inside = frozenset().union(*(self._constants[child.get_id()][1] for child in children))
            self._constants[top.get_id()] = (top, inside)
            stack.pop()
        return self._constants[term.get_id()][1]

    def _join(self, names: Collection[str]) -> str | None:
        """Put the named variables in one part; its representative (None for a term with no variable)."""
        roots = [self._root(name) for name in names]
        if not roots:
            return None
        first = roots[0]
        for other in roots[1:]:
            if other != first:
                self._parent[other] = first
        return first

    def _root_of(self, name: str | None) -> str | None:
        return None if name is None else self._root(name)

    def _root(self, name: str) -> str:
        root = name
        while self._parent.setdefault(root, root) != root:
            root = self._parent[root]
        while name != root:  # path compression
            self._parent[name], name = root, self._parent[name]
        return root


def _fact_variables(compiled: Any) -> dict[str, frozenset[str]]:
    """Each fact's variable names: value, presence, month shifts, and for a history every slot's."""
    found: dict[str, set[str]] = {}
    for name, fact in compiled.facts.items():
        found[name] = {var.decl().name() for var in (fact.value, fact.present) if var is not None}
    for shift in compiled.shifts.values():
        found[shift.fact].add(shift.var.decl().name())
    for name, history in compiled.histories.items():
        found[name] = {var.decl().name() for slot in history.slots
                       for var in (slot.present, *[v for f in slot.fields.values() for v in (f.value, f.present)])
                       if var is not None}
    return {name: frozenset(variables) for name, variables in found.items()}
