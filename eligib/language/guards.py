"""The subgroup guard rule: a fact declared `only if C` may be used only where C is known to hold
(under `C and ...`, `C implies ...`, the `then` branch of `... if C else ...`, a criterion `only if C`;
and `not C` after `C or ...`, in a later item of an `any of`, in an `else` branch)."""

from __future__ import annotations

from collections.abc import Iterator

from eligib.language import ast
from eligib.language.check_state import CheckState
from eligib.language.diagnostics import error

Context = tuple[ast.Expr, ...]  # the conditions known to hold where a node is evaluated


def check_guards(state: CheckState) -> None:
    """Every use of a subgroup fact must sit under that fact's own condition."""
    reported: set[int] = set()
    for fact in state.protocol.facts:
        if fact.guard is not None:
            _guarded_uses(state, fact.guard, (), reported, set())
    for criterion in state.criteria.values():
        context: Context = ()
        if criterion.guard is not None:
            _guarded_uses(state, criterion.guard, (), reported, set())
            context = tuple(conjuncts(criterion.guard))
        _guarded_uses(state, criterion.body, context, reported, set())
    statements: list[ast.Assertion | ast.Assumption] = [*state.assertions.values(), *state.assumptions.values()]
    for statement in statements:
        _guarded_uses(state, statement.body, (), reported, set())
    for name, definition in state.definitions.items():
        if name not in state.used_definitions:
            _guarded_uses(state, definition.body, (), reported, set())


def _guarded_uses(state: CheckState, expr: ast.Expr, context: Context, reported: set[int],
                  expanding: set[str]) -> None:
    for node, known in _walk_with_context(expr, context):
        if not isinstance(node, ast.NameRef) or node.nid in state.field_refs:
            continue
        if node.name in state.definitions and node.name not in expanding:
            _guarded_uses(state, state.definitions[node.name].body, known, reported, expanding | {node.name})
        info = state.facts.get(node.name)
        if info is None or info.guard is None or _holds_in(state, info.guard, known) or node.nid in reported:
            continue
        reported.add(node.nid)
        condition = state.text(info.guard)
        state.report(error("unguarded-fact", f"fact `{node.name}` exists only if `{condition}`", node.span,
                           "used where that condition is not known to hold",
                           help=f"write `{condition} and {node.name}` or `{condition} implies ...`, or give the "
                                f"criterion `only if {condition}`"))


def conjuncts(expr: ast.Expr) -> Iterator[ast.Expr]:
    """The parts that must all hold for `expr` to hold (through `and` and `all of`)."""
    if isinstance(expr, ast.And):
        for operand in expr.operands:
            yield from conjuncts(operand)
    elif isinstance(expr, ast.Block) and expr.kind == ast.BlockKind.ALL:
        for item in expr.items:
            yield from conjuncts(item.body)
    else:
        yield expr


def _holds_in(state: CheckState, guard: ast.Expr, context: Context) -> bool:
    # a condition on an item's field (inside `where`) says nothing of a fact of the same name
    context = tuple(item for item in context if not _reads_a_field(state, item))
    known = set(context) | {_negation(state, item) for item in context if isinstance(item, ast.Not)}
    # a condition that holds has a value: `x` (true) and `x is V` say that `x is not none`
    known |= {ast.IsNone(item.subject if isinstance(item, ast.IsValue) else item, negated=True)
              for item in list(known) if isinstance(item, ast.NameRef) or
              (isinstance(item, ast.IsValue) and not item.negated)}
    return all(part in known for part in conjuncts(guard))


def _reads_a_field(state: CheckState, expr: ast.Expr) -> bool:
    """Does this condition read the item being tested (inside a `where`)? A query's own `where`
    reads its own items, and that is part of what the query says about the patient."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.NameRef) and node.nid in state.field_refs:
            return True
        if not isinstance(node, ast.Query):
            stack.extend(ast.children(node))
    return False


def _never_none(state: CheckState, expr: ast.Expr) -> bool:
    """Can this value not be none? (Literals, and facts not declared `or none`, and sums of them.)"""
    match expr:
        case ast.QuantityLiteral() | ast.DateLiteral():
            return True
        case ast.NameRef():
            info = state.facts.get(expr.name)
            return info is not None and not info.optional and expr.nid not in state.field_refs
        case ast.Arithmetic() | ast.Negate():
            return all(_never_none(state, child) for child in ast.children(expr))
        case _:
            return False


def _negation(state: CheckState, node: ast.Not) -> ast.Expr:
    """`not (age > 16 years)` read as `age <= 16 years`, so an `else` branch knows its condition;
    only when neither side can be none (with `age` none, both are false)."""
    inner = node.operand
    if isinstance(inner, ast.Compare) and len(inner.operators) == 1 and \
            all(_never_none(state, operand) for operand in inner.operands):
        return ast.Compare(inner.operands, (inner.operators[0].negated(),))
    if isinstance(inner, ast.IsValue):
        return ast.IsValue(inner.subject, inner.value, not inner.negated)
    if isinstance(inner, ast.Not):
        return inner.operand
    return node


def _walk_with_context(expr: ast.Expr, context: Context) -> Iterator[tuple[ast.Expr, Context]]:
    """Each node with the conditions known to hold where it is evaluated (short-circuit reading)."""
    stack: list[tuple[ast.Expr, Context]] = [(expr, context)]
    while stack:
        node, known = stack.pop()
        yield node, known
        stack.extend(_inside(node, known))


def _inside(node: ast.Expr, known: Context) -> list[tuple[ast.Expr, Context]]:
    """The children of a node, each with what is known where it is evaluated."""
    match node:
        case ast.And():
            found, extra = [], known
            for operand in node.operands:
                found.append((operand, extra))
                extra = extra + tuple(conjuncts(operand))
            return found
        case ast.Or():
            found, extra = [], known
            for operand in node.operands:
                found.append((operand, extra))
                extra = (*extra, ast.Not(operand))
            return found
        case ast.Block():
            found, extra = [], known
            for item in node.items:
                found.append((item.body, extra))
                if node.kind == ast.BlockKind.ALL:
                    extra = extra + tuple(conjuncts(item.body))
                elif node.kind == ast.BlockKind.ANY:  # read like `or`: a later item knows the earlier failed
                    extra = (*extra, ast.Not(item.body))
            return found
        case ast.Conditional():
            return [(node.condition, known), (node.then, known + tuple(conjuncts(node.condition))),
                    (node.otherwise, (*known, ast.Not(node.condition)))]
        case ast.Implies():
            return [(node.antecedent, known), (node.consequent, known + tuple(conjuncts(node.antecedent)))]
        case _:
            return [(child, known) for child in ast.children(node)]
