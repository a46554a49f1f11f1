"""The checked protocol: what the checker proved about a protocol, computed once, for the later stages.

Later stages may assume every name resolves, every expression is well typed (`type_of`), every
quantity's unit is known, and they find here, without walking the tree again: the facts each node
depends on through definitions, each criterion's facts, and one index of the named paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from eligib.language import ast
from eligib.language.diagnostics import Diagnostic
from eligib.language.source import SourceFile
from eligib.language.timepoints import criterion_timepoints, declared_timepoints
from eligib.values.types import ValueType
from eligib.values.units import Kind

CALENDAR_CODES = ("d", "wk", "mo", "a")


@dataclass(frozen=True)
class FactInfo:
    """A declared fact with its value type, canonical range bounds and unit conversions."""

    decl: ast.FactDecl
    type: ValueType
    low: Fraction | int | None  # canonical units, or a day number for dates
    high: Fraction | int | None
    # declared substance-specific conversions: other kind of unit -> (canonical value per canonical unit,
    # canonical offset)
    conversions: Mapping[Kind, tuple[Fraction, Fraction]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.decl.name

    @property
    def unit(self) -> str | None:
        return self.decl.type.unit

    @property
    def optional(self) -> bool:
        return self.decl.optional

    @property
    def guard(self) -> ast.Expr | None:
        return self.decl.guard

    @property
    def description(self) -> str:
        return self.decl.description

    @property
    def conversion_texts(self) -> Sequence[str]:
        return tuple(c.text for c in self.decl.conversions)


@dataclass(frozen=True)
class NamedPath:
    """A named alternative of a block (`relapsed:`), under a criterion: a path a patient may qualify by."""

    criterion: str
    dotted: str  # from the criterion: `t_all_lbl.relapsed`
    item: ast.BlockItem
    chain: tuple[ast.Expr, ...]  # the bodies that must hold to take it, outermost first
    subpaths: tuple[NamedPath, ...]

    @property
    def name(self) -> str:
        return self.item.name or ""

    @property
    def full(self) -> str:
        return f"{self.criterion}.{self.dotted}"


@dataclass(frozen=True, repr=False)
class CheckedProtocol:
    """A protocol that passed checking (see the module docstring). Immutable."""

    protocol: ast.Protocol
    source: SourceFile
    facts: Mapping[str, FactInfo]
    definitions: Mapping[str, ast.Definition]
    criteria: Mapping[str, ast.Criterion]
    assertions: Mapping[str, ast.Assertion]
    assumptions: Mapping[str, ast.Assumption]
    bindings: Mapping[str, ast.Binding]
    types: Mapping[int, ValueType] = field(repr=False)  # node id -> the type of its value
    warnings: tuple[Diagnostic, ...] = ()
    value_sets: Mapping[str, ast.ValueSet] = field(default_factory=dict)
    tables: Mapping[str, ast.Table] = field(default_factory=dict)
    field_refs: Mapping[int, str] = field(default_factory=dict, repr=False)  # node id -> the item field it reads
    node_facts: Mapping[int, frozenset[str]] = field(init=False, repr=False)
    criterion_facts: Mapping[str, frozenset[str]] = field(init=False, repr=False)
    paths: Mapping[str, tuple[NamedPath, ...]] = field(init=False, repr=False)  # criterion id -> its paths
    path_index: Mapping[str, NamedPath] = field(init=False, repr=False)  # `criterion.path.sub` -> the path
    assessed: Mapping[str, tuple[str, ...]] = field(init=False, repr=False)  # criterion id -> its time points
    _texts: dict[int, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    # what later stages derive once per protocol (the compiled Kleene program), by the stage's key
    derived: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        node_facts = _node_facts(self)
        set_field = object.__setattr__  # frozen: the indexes are computed here, once
        set_field(self, "node_facts", MappingProxyType(node_facts))
        set_field(self, "criterion_facts", MappingProxyType({
            cid: node_facts[c.body.nid] | (node_facts[c.guard.nid] if c.guard is not None else frozenset())
            for cid, c in self.criteria.items()}))
        paths = {cid: tuple(self._paths(cid, c.body, "", ())) for cid, c in self.criteria.items()}
        set_field(self, "paths", MappingProxyType(paths))
        index: dict[str, NamedPath] = {}
        stack = [path for found in paths.values() for path in found]
        while stack:
            path = stack.pop()
            index[path.full] = path
            stack.extend(path.subpaths)
        set_field(self, "path_index", MappingProxyType(index))
        set_field(self, "assessed", MappingProxyType({
            cid: criterion_timepoints(self.protocol, c, self.facts, self.criterion_facts[cid])
            for cid, c in self.criteria.items()}))

    @property
    def timepoints(self) -> tuple[str, ...]:
        """The study's assessment time points, in order (empty when the protocol declares none)."""
        return declared_timepoints(self.protocol)

    @property
    def id(self) -> str:
        return self.protocol.header.name

    def __repr__(self) -> str:
        # short: a protocol's full repr runs to megabytes, and test tools print their arguments
        return f"CheckedProtocol({self.id!r}, {self.source.path!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The same short form for pretty-printers (hypothesis prints a strategy's arguments with one)."""
        printer.text(repr(self))

    def type_of(self, node: ast.Expr) -> ValueType:
        return self.types[node.nid]

    def facts_of(self, node: ast.Expr) -> frozenset[str]:
        """The facts an expression depends on, through definitions."""
        found = self.node_facts.get(node.nid)
        return found if found is not None else _facts_under(self, node, {})

    def paths_of(self, criterion: str) -> list[NamedPath]:
        """Every named path of a criterion, each before its sub-paths (in source order)."""
        found: list[NamedPath] = []
        stack = list(reversed(self.paths[criterion]))
        while stack:
            path = stack.pop()
            found.append(path)
            stack.extend(reversed(path.subpaths))
        return found

    def named_items(self, node: ast.Expr) -> list[ast.BlockItem]:
        """Items of the blocks directly under a node (through definitions and `and`)."""
        if isinstance(node, ast.NameRef) and node.name in self.definitions:
            return self.named_items(self.definitions[node.name].body)
        if isinstance(node, ast.Block):
            return list(node.items)
        if isinstance(node, ast.And):
            return [item for op in node.operands for item in self.named_items(op)]
        return []

    def _paths(self, cid: str, node: ast.Expr, prefix: str, enclosing: tuple[ast.Expr, ...]) -> list[NamedPath]:
        found: list[NamedPath] = []
        for item in self.named_items(node):
            if item.name is None:
                found += self._paths(cid, item.body, prefix, enclosing)
                continue
            dotted, chain = f"{prefix}{item.name}", (*enclosing, item.body)
            found.append(NamedPath(cid, dotted, item, chain, tuple(self._paths(cid, item.body, dotted + ".", chain))))
        return found

    def text(self, node: ast.Expr) -> str:
        """An expression as the author wrote it (printed again when it spans lines)."""
        text = self._texts.get(node.nid)
        if text is None:
            from eligib.language.printer import to_text

            written = node.span.text if node.span is not None else None
            text = self._texts[node.nid] = written if written is not None else to_text(node)
        return text


def expression_roots(checked: CheckedProtocol) -> list[ast.Expr]:
    """Every top-level expression of the protocol (each definition once, wherever it is used)."""
    roots: list[ast.Expr] = [d.body for d in checked.definitions.values()]
    for criterion in checked.criteria.values():
        roots += [criterion.body] + ([criterion.guard] if criterion.guard is not None else [])
    roots += [a.body for a in checked.assertions.values()] + [a.body for a in checked.assumptions.values()]
    roots += [f.guard for f in checked.facts.values() if f.guard is not None]
    return roots


def _node_facts(checked: CheckedProtocol) -> dict[int, frozenset[str]]:
    """For every node of the protocol, the facts it depends on through definitions."""
    found: dict[int, frozenset[str]] = {}
    for root in expression_roots(checked):
        _facts_under(checked, root, found)
    return found


def _facts_under(checked: CheckedProtocol, root: ast.Expr, found: dict[int, frozenset[str]]) -> frozenset[str]:
    """The facts of `root`, filling `found` for every node below it (post-order, without recursion)."""
    stack: list[tuple[ast.Expr, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if node.nid in found:
            continue
        if isinstance(node, ast.NameRef) and node.name in checked.definitions and not ready \
                and node.nid not in checked.field_refs:
            body = checked.definitions[node.name].body
            stack += [(node, True), (body, False)]
            continue
        if not ready and ast.children(node):
            stack.append((node, True))
            stack.extend((child, False) for child in ast.children(node))
            continue
        names: frozenset[str] = frozenset()
        if isinstance(node, ast.Query):
            names = frozenset({node.collection})
        elif isinstance(node, ast.NameRef) and node.nid not in checked.field_refs:
            if node.name in checked.facts:
                names = frozenset({node.name})
            elif node.name in checked.definitions:
                names = found.get(checked.definitions[node.name].body.nid, frozenset())
        for child in ast.children(node):
            names |= found.get(child.nid, frozenset())
        found[node.nid] = names
    return found[root.nid]
