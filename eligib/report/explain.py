"""Turn a decision into plain-data findings: statuses, values against thresholds, paths, missing facts.

No formatting happens here (render.py does that); every reason is a short sentence built from
the protocol's own expressions and the patient's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eligib.language import ast
from eligib.language.checker import CheckedProtocol, DateType, NumType
from eligib.language.diagnostics import Diagnostic
from eligib.logic.solver import Decision
from eligib.values.units import format_decimal, from_canonical
from eligib.values.calendar import NONE, format_date

NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
STATUS_WORD = {True: "holds", False: "fails", None: "unknown"}


@dataclass
class PathFinding:
    """A named alternative (path) of a block and what holds or fails inside it."""

    name: str
    path: str  # dotted from the criterion, e.g. "t_all_lbl.relapsed"
    status: str  # "holds" | "fails" | "unknown"
    reasons: list[str] = field(default_factory=list)
    paths: list[PathFinding] = field(default_factory=list)


@dataclass
class CriterionFinding:
    id: str
    kind: str
    label: str
    record: str
    status: str  # "met" | "not_met" | "unknown" | "not_applicable"
    blocks: bool | None  # True: keeps the patient out; None: might
    decided_by: str
    reasons: list[str]
    paths: list[PathFinding]
    missing: list[str]  # for an open criterion: the missing facts it depends on


@dataclass
class MissingFact:
    name: str
    description: str
    criteria: list[str]


@dataclass
class Explanation:
    protocol: dict[str, str | None]
    patient: str
    verdict: str
    criteria: list[CriterionFinding]
    blocking: list[str]
    conflicts: list[list[str]]
    missing_facts: list[MissingFact]
    holding_paths: list[str]
    warnings: list[Diagnostic]

    def path_status(self, dotted: str) -> str | None:
        """Status of a path named `criterion.path.subpath`, or None when there is no such path."""
        criterion_id, _, rest = dotted.partition(".")
        finding = next((c for c in self.criteria if c.id == criterion_id), None)
        paths = finding.paths if finding else []
        found = None
        for part in rest.split("."):
            found = next((p for p in paths if p.name == part), None)
            if found is None:
                return None
            paths = found.paths
        return found.status if found else None


def explain(checked: CheckedProtocol, decision: Decision, patient: str = "<patient>",
            warnings: list[Diagnostic] | None = None) -> Explanation:
    writer = _Reasons(checked, decision)
    findings = [writer.criterion(checked.criteria[cid]) for cid in checked.criteria]
    header = checked.protocol.header
    protocol = {"id": header.name, "title": header.get("title"), "version": header.get("version"),
                "registry": header.get("registry"), "file": checked.source.path}
    missing = [MissingFact(name, checked.facts[name].decl.description, criteria)
               for name, criteria in decision.missing.items()]
    holding = [f"{c.id}.{p}" for c in findings for p in _holding_paths(c.paths)] \
        if decision.verdict == "eligible" else []
    return Explanation(protocol, patient, decision.verdict, findings, decision.blocking, decision.conflicts,
                       missing, holding, list(warnings or []))


def _holding_paths(paths: list[PathFinding]) -> list[str]:
    """The deepest named paths that hold (the route by which the patient qualifies)."""
    found = []
    for path in paths:
        if path.status != "holds":
            continue
        deeper = _holding_paths(path.paths)
        found.extend(deeper or [path.path])
    return found


def show_value(checked: CheckedProtocol, name: str, value: Any) -> str:
    """A fact's value in its declared unit, as a patient file would state it."""
    info = checked.facts[name]
    if value is NONE:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(info.type, DateType):
        return format_date(value)
    if isinstance(info.type, NumType):
        return format_decimal(from_canonical(value, info.unit)) + (f" {info.unit}" if info.unit else "")
    return str(value)


class _Reasons:
    def __init__(self, checked: CheckedProtocol, decision: Decision) -> None:
        self.checked = checked
        self.decision = decision
        self.evaluator = decision.evaluator
        self.facts = decision.evaluator.facts

    # ------------------------------------------------------------ criteria
    def criterion(self, criterion: ast.Criterion) -> CriterionFinding:
        result = self.decision.criteria[criterion.id]
        status = result.status
        blocks = None if result.passes is None else not result.passes
        names = self.facts_in(criterion)
        missing = sorted(n for n in names if n not in self.facts) if status == "unknown" else []
        if status == "not_applicable":
            reasons = [f"does not apply: `{self.text(criterion.guard)}` is false"]
        elif status != "unknown" and result.decided_by == "solver":
            open_facts = sorted(n for n in names if n not in self.facts)
            outcome = {("inclusion", "met"): "met", ("inclusion", "not_met"): "not met",
                       ("exclusion", "met"): "applies", ("exclusion", "not_met"): "does not apply"}
            reasons = [f"{outcome[(criterion.kind, status)]} for every value the declared ranges allow for the "
                       f"missing {self.fact_list(open_facts)}"]
        else:
            reasons = self.reasons(criterion.body)
        decided = None if status == "unknown" else f"`{criterion.id}` is already {status.replace('_', ' ')}"
        paths = self.paths(criterion.body, "", decided)
        return CriterionFinding(criterion.id, criterion.kind, criterion.label, criterion.record, status, blocks,
                                result.decided_by, reasons, paths, missing)

    def facts_in(self, criterion: ast.Criterion) -> frozenset[str]:
        guard = self.checked.facts_of(criterion.guard) if criterion.guard is not None else frozenset()
        return self.checked.facts_of(criterion.body) | guard

    @staticmethod
    def fact_list(names: list[str]) -> str:
        return ", ".join(f"`{n}`" for n in names) if names else "facts"

    # --------------------------------------------------------------- paths
    def paths(self, node: ast.Expr, prefix: str, decided: str | None) -> list[PathFinding]:
        """Named paths under a node. Where the known facts leave a path open, the solver decides it
        only when it could matter; under a decided criterion or path (`decided` says which) an open
        path cannot change anything, and says so."""
        found: list[PathFinding] = []
        for item in self.checked.named_items(node):
            if item.name is None:
                found.extend(self.paths(item.body, prefix, decided))
                continue
            dotted = f"{prefix}{item.name}"
            status = self.status(item.body, refine=decided is None, subject=f"path `{dotted}`")
            if status is None and decided is not None:
                reasons = [f"open, but it cannot change the result: {decided}"]
            else:
                reasons = self.path_reasons(item.body)
            inner = decided if status is None else f"`{dotted}` already {STATUS_WORD[status]}"
            sub = self.paths(item.body, dotted + ".", inner)
            found.append(PathFinding(item.name, dotted, STATUS_WORD[status], reasons, sub))
        return found

    def path_reasons(self, body: ast.Expr) -> list[str]:
        """Why a path holds or fails, leaving out its own named sub-paths (they are listed apart)."""
        value = self.evaluator.truth(self.evaluator.eval(body))
        if value is None:
            return [self.unknown_reason(body)]
        return self.why(body, value, skip_named=True)

    def only_named(self, node: ast.Expr) -> bool:
        items = self.checked.named_items(node)
        return bool(items) and all(item.name is not None for item in items)

    def status(self, node: ast.Expr, refine: bool, subject: str) -> bool | None:
        value = self.evaluator.truth(self.evaluator.eval(node))
        analysis = self.decision.analysis
        if value is None and refine and analysis is not None:
            value = analysis.node_status(node, self.checked.facts_of(node), subject)
        return value

    # ------------------------------------------------------------- reasons
    def reasons(self, node: ast.Expr) -> list[str]:
        value = self.evaluator.truth(self.evaluator.eval(node))
        if value is None:
            return [self.unknown_reason(node)]
        return self.why(node, value)

    def unknown_reason(self, node: ast.Expr) -> str:
        missing = sorted(n for n in self.checked.facts_of(node) if n not in self.facts)
        return f"depends on missing {self.fact_list(missing)}" if missing else "cannot be decided yet"

    def why(self, node: ast.Expr, value: bool, path: str = "", skip_named: bool = False) -> list[str]:
        """Short sentences saying why `node` has the (definite) truth value `value`.

        Sentences from inside a named path start with its dotted name (`relapsed.after_transplant: ...`);
        with `skip_named`, named paths are left out (the caller lists them itself)."""
        match node:
            case ast.BoolLiteral():
                return [f"`{str(node.value).lower()}`"]
            case ast.NameRef():
                if node.name in self.checked.definitions:
                    return self.why(self.checked.definitions[node.name].body, value, path, skip_named)
                return [self.fact_statement(node.name)]
            case ast.Not():
                return self.why(node.operand, not value, path, skip_named)
            case ast.And() | ast.Or():
                return self.junction(list(node.operands), value, isinstance(node, ast.And), path, skip_named)
            case ast.Block():
                return self.block(node, value, path, skip_named)
            case ast.Compare():
                return [self.compare(node, value)]
            case ast.Conditional():
                return self.conditional(node, value)
            case ast.Implies():
                if value:
                    antecedent = self.evaluator.truth(self.evaluator.eval(node.antecedent))
                    return self.why(node.antecedent, False, path) if antecedent is False \
                        else self.why(node.consequent, True, path)
                return self.why(node.antecedent, True, path) + self.why(node.consequent, False, path)
            case ast.IsValue() | ast.InSet():
                return [self.membership(node)]
            case ast.IsNone():
                return [self.none_test(node)]
            case ast.Within():
                return [self.within(node, value)]
            case _:
                return [f"`{self.text(node)}` is {str(value).lower()}"]

    def decisive(self, operands: list[ast.Expr], value: bool, conjunction: bool) -> list[ast.Expr]:
        """The operands that explain a junction's value: all of them, or those that settle it."""
        if conjunction == value:  # and: all hold; or: none holds
            return operands
        settling = [op for op in operands if self.evaluator.truth(self.evaluator.eval(op)) == value]
        return settling if conjunction else settling[:1]  # `or` true: the first alternative that holds

    def junction(self, operands: list[ast.Expr], value: bool, conjunction: bool, path: str,
                 skip_named: bool) -> list[str]:
        reasons: list[str] = []
        for op in self.decisive(operands, value, conjunction):
            reasons.extend(self.why(op, value, path, skip_named))
        return reasons

    def block(self, node: ast.Block, value: bool, path: str, skip_named: bool) -> list[str]:
        if node.kind == "at_least":
            held = [i for i in node.items if self.evaluator.truth(self.evaluator.eval(i.body)) is True]
            return [f"{len(held)} of {len(node.items)} hold; at least {node.count} needed"]
        items = node.items
        bodies = self.decisive([item.body for item in items], value, node.kind == "all")
        reasons: list[str] = []
        for item in (i for i in items if any(i.body is b for b in bodies)):
            if item.name is None:
                reasons.extend(self.why(item.body, value, path, skip_named))
            elif not skip_named:
                named = f"{path}{item.name}"
                inner = self.why(item.body, value, named + ".")
                own = [r for r in inner if not r.startswith(named + ".")]
                if own:
                    reasons.append(f"{named}: {'; '.join(own)}")
                reasons.extend(r for r in inner if r.startswith(named + "."))
        return reasons

    def compare(self, node: ast.Compare, value: bool) -> str:
        links = range(len(node.operators))
        if value:
            parts = [self.operand(node.operands[0])]
            for i in links:
                parts += [node.operators[i], self.operand(node.operands[i + 1])]
            return " ".join(parts)
        failing = [i for i in links if self.evaluator.link(node, i) is False]
        statements = []
        for i in failing:
            left, right = node.operands[i], node.operands[i + 1]
            if self.evaluator.eval(left) is NONE or self.evaluator.eval(right) is NONE:
                none_side = left if self.evaluator.eval(left) is NONE else right
                statements.append(f"`{self.text(none_side)}` is none")
                continue
            statements.append(f"{self.operand(left)} {NEGATED[node.operators[i]]} {self.operand(right)}")
        return "; ".join(statements)

    def conditional(self, node: ast.Conditional, value: bool) -> list[str]:
        condition = self.evaluator.truth(self.evaluator.eval(node.condition))
        taken, other = (node.then, node.otherwise) if condition else (node.otherwise, node.then)
        reasons = self.why(taken, value) if self.evaluator.truth(self.evaluator.eval(taken)) is not None \
            else [self.unknown_reason(taken)]
        if condition is None:
            return reasons
        if not value or condition:
            state = "true" if condition else "false"
            need = "applies because" if condition else "would apply only if"
            reasons.append(f"`{self.text(other if not condition else taken)}` {need} "
                           f"`{self.text(node.condition)}`, which is {state}")
        return reasons

    def membership(self, node: ast.IsValue | ast.InSet) -> str:
        subject = self.evaluator.eval(node.subject)
        shown = "none" if subject is NONE else str(subject)
        name = self.text(node.subject)
        if isinstance(node, ast.IsValue):
            if (subject == node.value) != node.negated:
                return f"{name} is {shown}" + (f", not {node.value}" if node.negated else "")
            return f"{name} is {shown}" + ("" if node.negated else f", not {node.value}")
        inside = subject in node.values
        listed = ", ".join(node.values)
        return f"{name} is {shown}, {'in' if inside else 'not in'} ({listed})"

    def none_test(self, node: ast.IsNone) -> str:
        subject = self.evaluator.eval(node.subject)
        name = self.text(node.subject)
        if subject is NONE:
            return f"{name} is none"
        return f"{name} is {self.show(subject, node.subject)}, not none"

    def within(self, node: ast.Within, value: bool) -> str:
        from eligib.logic.evaluate import window

        date, anchor = self.evaluator.eval(node.subject), self.evaluator.eval(node.anchor)
        if date is NONE:
            return f"{self.text(node.subject)} is none"
        if anchor is NONE:
            return f"{self.text(node.anchor)} is none"
        low, high = window(anchor, node)
        relation = "within" if value else "not within"
        return (f"{self.text(node.subject)} {format_date(date)} is {relation} {node.amount.text} {node.direction} "
                f"{self.text(node.anchor)} {format_date(anchor)} ({format_date(low)} to {format_date(high)})")

    def fact_statement(self, name: str) -> str:
        value = self.facts.get(name)
        if value is None:
            return f"`{name}` is missing"
        if value is NONE:
            return f"{name} is none"
        if isinstance(value, bool):
            return f"{name} is {'true' if value else 'false'}"
        return f"{name} is {self.show_fact(name, value)}"

    # ------------------------------------------------------------- values
    def operand(self, node: ast.Expr) -> str:
        """An operand as written, with the patient's value where it is not a literal."""
        if isinstance(node, (ast.QuantityLiteral, ast.DateLiteral)):
            return self.text(node)
        value = self.evaluator.eval(node)
        shown = "missing" if value is None else self.show(value, node)
        if isinstance(node, ast.NameRef):
            return f"{node.name} {shown}"
        return f"{self.text(node)} = {shown}"

    def show(self, value: Any, node: ast.Expr) -> str:
        if value is NONE:
            return "none"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        kind = self.checked.types.get(id(node))
        if isinstance(kind, DateType):
            return format_date(value)
        if isinstance(kind, NumType):
            unit = self.display_unit(node, kind)
            return format_decimal(from_canonical(value, unit)) + (f" {unit}" if unit else "")
        return str(value)

    def show_fact(self, name: str, value: Any) -> str:
        return show_value(self.checked, name, value)

    def display_unit(self, node: ast.Expr, kind: NumType) -> str | None:
        if isinstance(node, ast.NameRef) and node.name in self.checked.facts:
            return self.checked.facts[node.name].unit
        return kind.unit

    def text(self, node: ast.Expr | None) -> str:
        return "" if node is None else self.checked.text(node)
