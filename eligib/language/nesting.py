"""The nesting limit, counted through definitions: every later stage walks expressions recursively,
and a chain of definitions nests as deeply as the one long expression it stands for."""

from __future__ import annotations

from collections.abc import Iterator

from eligib.language import ast
from eligib.language.check_state import CheckState
from eligib.language.diagnostics import error
from eligib.limits import MAX_EXPANDED_DEPTH


def check_depth(state: CheckState) -> bool:
    """Report each expression nested too deeply (once, where a chain first grows too deep); False if any."""
    depths = _definition_depths(state.definitions)
    protocol = state.protocol
    roots: list[tuple[str, ast.Expr]] = [(f"criterion `{c.id}`", part) for c in protocol.criteria
                                         for part in (c.guard, c.body) if part is not None]
    roots += [(f"definition `{name}`", d.body) for name, d in state.definitions.items()]
    statements: list[ast.Assertion | ast.Assumption] = [*protocol.assertions, *protocol.assumptions]
    roots += [(f"`{s.id}`", s.body) for s in statements]
    roots += [(f"the condition of fact `{f.name}`", f.guard) for f in protocol.facts if f.guard is not None]
    fine = True
    for what, root in roots:
        if _expanded_depth(root, depths) <= MAX_EXPANDED_DEPTH:
            continue
        fine = False
        if any(depths.get(node.name, 0) > MAX_EXPANDED_DEPTH for _, node in _levels(root)
               if isinstance(node, ast.NameRef)):
            continue  # reported where the chain first grows too deep
        state.report(error("too-deep", f"{what} nests more than {MAX_EXPANDED_DEPTH} operators deep, counting "
                           "through the definitions it uses", root.span, "too deep",
                           help="flatten the chain of definitions; see docs/limits.md"))
    return fine


def _levels(root: ast.Expr) -> Iterator[tuple[int, ast.Expr]]:
    """Every node under `root` with its depth (1 for the root), without recursion."""
    stack = [(1, root)]
    while stack:
        level, node = stack.pop()
        yield level, node
        stack.extend((level + 1, child) for child in ast.children(node))


def _expanded_depth(root: ast.Expr, depths: dict[str, int]) -> int:
    """The depth of an expression with every definition it names written out in place."""
    return max(level + (depths.get(node.name, 0) if isinstance(node, ast.NameRef) else 0)
               for level, node in _levels(root))


def _definition_depths(definitions: dict[str, ast.Definition]) -> dict[str, int]:
    """Each definition's depth written out in full, in dependency order (a cycle counts once; the checker
    reports it as `definition-cycle`)."""
    uses = {name: {node.name for _, node in _levels(d.body) if isinstance(node, ast.NameRef)
                   and node.name in definitions} for name, d in definitions.items()}
    depths: dict[str, int] = {}
    for start in definitions:
        stack, visiting = [start], {start}
        while stack:
            name = stack[-1]
            waiting = [used for used in uses[name] if used not in depths and used not in visiting]
            if waiting:
                stack.append(waiting[0])
                visiting.add(waiting[0])
                continue
            stack.pop()
            depths[name] = _expanded_depth(definitions[name].body, depths)
    return depths
