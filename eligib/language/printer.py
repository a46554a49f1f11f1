"""Print expressions back as protocol text (for explanations of expressions that span lines)."""

from __future__ import annotations

from typing import assert_never

from eligib.language import ast


def to_text(node: ast.Expr) -> str:
    match node:
        case ast.BoolLiteral():
            return "true" if node.value else "false"
        case ast.QuantityLiteral():
            return node.text
        case ast.DateLiteral():
            return node.value.isoformat()
        case ast.NameRef():
            return node.name
        case ast.Call():
            return f"{node.function}({', '.join(to_text(arg) for arg in node.args)})"
        case ast.Not():
            return f"not {_wrap(node.operand)}"
        case ast.And() | ast.Or():
            word = " and " if isinstance(node, ast.And) else " or "
            return word.join(_wrap(op) for op in node.operands)
        case ast.Compare() | ast.Arithmetic():
            parts = [_wrap(node.operands[0])]
            for operator, operand in zip(node.operators, node.operands[1:]):
                parts += [operator, _wrap(operand)]
            return " ".join(parts)
        case ast.Negate():
            return f"-{_wrap(node.operand)}"
        case ast.Conditional():
            return f"{_wrap(node.then)} if {_wrap(node.condition)} else {_wrap(node.otherwise)}"
        case ast.Implies():
            return f"{_wrap(node.antecedent)} implies {_wrap(node.consequent)}"
        case ast.IsValue():
            return f"{_wrap(node.subject)} is {'not ' if node.negated else ''}{node.value}"
        case ast.IsRanked():
            return f"{_wrap(node.subject)} is at {'most' if node.at_most else 'least'} {node.value}"
        case ast.InSet():
            return f"{_wrap(node.subject)} {'not in' if node.negated else 'in'} ({', '.join(node.values)})"
        case ast.IsNone():
            return f"{_wrap(node.subject)} is {'not ' if node.negated else ''}none"
        case ast.Within():
            return f"{_wrap(node.subject)} within {node.amount.text} {node.direction} {_wrap(node.anchor)}"
        case ast.Block():
            head = {"any": "any of", "all": "all of"}.get(node.kind, f"at least {node.count} of")
            items = ", ".join((f"{i.name}: " if i.name else "") + to_text(i.body) for i in node.items)
            return f"{head} ({items})"
        case ast.InValueSet():
            return f"{_wrap(node.subject)} {'not in' if node.negated else 'in'} {node.value_set}"
        case ast.Query():
            field = f"{node.field} of " if node.field is not None else ""
            where = f" where {to_text(node.where)}" if node.where is not None else ""
            return f"{node.kind}({field}{node.collection}{where})"
        case _:
            assert_never(node)


def _wrap(node: ast.Expr) -> str:
    simple = (ast.BoolLiteral, ast.QuantityLiteral, ast.DateLiteral, ast.NameRef, ast.Call, ast.Query)
    return to_text(node) if isinstance(node, simple) else f"({to_text(node)})"
