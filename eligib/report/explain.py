"""Turn a decision into plain-data findings: statuses, values against thresholds, paths, missing facts.

No formatting happens here (render.py does that); every reason is a short sentence built from
the protocol's own expressions and the patient's values.
"""

from __future__ import annotations

from typing import Any, assert_never

from eligib.language import ast
from eligib.language.checked import CheckedProtocol, NamedPath
from eligib.language.diagnostics import Diagnostic
from eligib.logic.evaluate import Truth, window
from eligib.logic.solver import CriterionResult, DecidedBy, Decision, Status, criterion_status, settled
from eligib.report.explanation import CriterionFinding, Explanation, MissingFact, PathFinding, PathStatus
from eligib.values.calendar import format_date
from eligib.values.types import NONE, DateTimeType, EnumType, History, ListType, NumType, shown
from eligib.values.types.timestamp import format_instant

STATUS_WORD = {True: "holds", False: "fails", None: "unknown"}


def explain(checked: CheckedProtocol, decision: Decision, patient: str = "<patient>",
            warnings: list[Diagnostic] | None = None) -> Explanation:
    """The findings behind a decision, for one patient."""
    writer = _Reasons(checked, decision)
    findings = [writer.criterion(checked.criteria[cid]) for cid in checked.criteria]
    writer.settle_paths(findings)
    header = checked.protocol.header
    protocol = {"id": header.name, "title": header.get("title"), "version": header.get("version"),
                "registry": header.get("registry"), "file": checked.source.path}
    facts = decision.facts
    missing = [MissingFact(name, _described(checked.facts[name].description, facts.get(name)), criteria)
               for name, criteria in decision.missing.items()]
    return Explanation(protocol, patient, decision.verdict, findings, decision.blocking, decision.conflicts,
                       missing, list(warnings or []))


def _described(description: str, value: Any) -> str:
    """A missing fact's description; for a history known in part, what is known and what is not."""
    if not isinstance(value, History):
        return description
    unknown = sum(1 for item in value.items if None in item)
    parts = [f"{len(value.items)} item{'s' if len(value.items) != 1 else ''} listed"]
    if unknown:
        parts.append(f"{unknown} with unknown fields")
    if not value.complete:
        parts.append("more may exist")
    known = ", ".join(parts)
    return f"{description}; {known}" if description else known


class _Reasons:
    def __init__(self, checked: CheckedProtocol, decision: Decision) -> None:
        self.checked = checked
        self.outcomes, self.refined = decision.outcomes, decision.refined  # not the decision: it holds the solver
        self.analysis = decision.analysis  # released once the open paths are settled (settle_paths)
        self.evaluator = decision.evaluator
        self.facts = decision.facts
        self.statuses: dict[int, Truth] = {}  # a path body's node id -> its status, settled by the solver

    def settle_paths(self, findings: list[CriterionFinding]) -> None:
        """Ask the solver now, on this thread, about every open path it must decide (those of open
        criteria), then let go of it: the sentences are built later, maybe on another thread, and must
        not touch this thread's Z3 context (nor keep it alive)."""
        if self.analysis is not None:
            for finding in findings:
                if finding.status == Status.UNKNOWN:
                    self._settle(self.checked.paths[finding.id], None)
        self.analysis = None

    def _settle(self, paths: tuple[NamedPath, ...], decided: str | None) -> None:
        """The statuses `paths` will read, in the same walk (open paths under a decided one stay open)."""
        for path in paths:
            status = self.status(path.item.body, refine=decided is None, subject=f"path `{path.dotted}`")
            self._settle(path.subpaths, decided if status is None else path.dotted)

    # ------------------------------------------------------------ criteria
    def criterion(self, criterion: ast.Criterion) -> CriterionFinding:
        cid = criterion.id
        refined = self.refined.get(cid)
        applies, passes = self.outcomes[cid] if refined is None else (refined.applies, refined.passes)
        status = criterion_status(criterion.kind, applies, passes)
        missing = sorted(n for n in self.checked.criterion_facts[cid] if not settled(self.facts.get(n))) \
            if status == Status.UNKNOWN else []
        return CriterionFinding(cid, criterion.kind, criterion.label, criterion.record, status,
                                None if passes is None else not passes,
                                DecidedBy.FACTS if refined is None else refined.decided_by, missing,
                                lambda: self.details(criterion, refined or CriterionResult(
                                    cid, criterion.kind, applies, passes, DecidedBy.FACTS)))

    def details(self, criterion: ast.Criterion, result: CriterionResult) -> tuple[list[str], list[PathFinding]]:
        """A criterion's reasons and named paths."""
        status, names = result.status, self.checked.criterion_facts[criterion.id]
        if status == Status.NOT_APPLICABLE:  # its paths cannot matter: none are listed
            return [f"does not apply: `{self.text(criterion.guard)}` is false"], []
        if status != Status.UNKNOWN and result.decided_by == DecidedBy.SOLVER:
            open_facts = sorted(n for n in names if not settled(self.facts.get(n)))
            outcome = {("inclusion", "met"): "met", ("inclusion", "not_met"): "not met",
                       ("exclusion", "met"): "applies", ("exclusion", "not_met"): "does not apply"}
            reasons = [f"{outcome[(criterion.kind, status)]} for every value the declared ranges allow for the "
                       f"missing {self.fact_list(open_facts)}"]
        else:
            reasons = self.reasons(criterion.body)
        decided = None if status == Status.UNKNOWN else f"`{criterion.id}` is already {status.replace('_', ' ')}"
        return reasons, self.paths(self.checked.paths[criterion.id], decided)

    @staticmethod
    def fact_list(names: list[str]) -> str:
        return ", ".join(f"`{n}`" for n in names) if names else "facts"

    # --------------------------------------------------------------- paths
    def paths(self, paths: tuple[NamedPath, ...], decided: str | None) -> list[PathFinding]:
        """Findings for named paths. Where the known facts leave a path open, the solver decides it only
        when it could matter; under a decided criterion or path (`decided` says which) an open path
        cannot change anything, and says so."""
        found: list[PathFinding] = []
        for path in paths:
            body = path.item.body
            status = self.status(body, refine=decided is None, subject=f"path `{path.dotted}`")
            if status is None and decided is not None:
                reasons = [f"open, but it cannot change the result: {decided}"]
            else:
                reasons = self.path_reasons(body)
            inner = decided if status is None else f"`{path.dotted}` already {STATUS_WORD[status]}"
            found.append(PathFinding(path.name, path.dotted, PathStatus.of(status), reasons,
                                     self.paths(path.subpaths, inner)))
        return found

    def path_reasons(self, body: ast.Expr) -> list[str]:
        """Why a path holds or fails, leaving out its own named sub-paths (they are listed apart)."""
        value = self.evaluator.condition(body)
        if value is None:
            return [self.unknown_reason(body)]
        return self.why(body, value, skip_named=True)

    def status(self, node: ast.Expr, refine: bool, subject: str) -> Truth:
        if refine and node.nid in self.statuses:
            return self.statuses[node.nid]
        value = self.evaluator.condition(node)
        if value is None and refine and self.analysis is not None:
            value = self.statuses[node.nid] = self.analysis.node_status(node, self.checked.facts_of(node), subject)
        return value

    # ------------------------------------------------------------- reasons
    def reasons(self, node: ast.Expr) -> list[str]:
        value = self.evaluator.condition(node)
        if value is None:
            return [self.unknown_reason(node)]
        return self.why(node, value)

    def unknown_reason(self, node: ast.Expr) -> str:
        missing = sorted(n for n in self.checked.facts_of(node) if not settled(self.facts.get(n)))
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
                    antecedent = self.evaluator.condition(node.antecedent)
                    return self.why(node.antecedent, False, path) if antecedent is False \
                        else self.why(node.consequent, True, path)
                return self.why(node.antecedent, True, path) + self.why(node.consequent, False, path)
            case ast.IsValue() | ast.InSet():
                return [self.membership(node)]
            case ast.IsRanked():
                return [self.rank(node)]
            case ast.IsNone():
                return [self.none_test(node)]
            case ast.InValueSet():
                return [self.value_set_membership(node)]
            case ast.Query():
                return self.query(node, value)
            case ast.Within():
                return [self.within(node, value)]
            case ast.QuantityLiteral() | ast.DateLiteral() | ast.Call() | ast.Arithmetic() | ast.Negate():
                return [f"`{self.text(node)}` is {str(value).lower()}"]  # not conditions: the checker refuses them
            case _:
                assert_never(node)

    def decisive(self, operands: list[ast.Expr], value: bool, conjunction: bool) -> list[ast.Expr]:
        """The operands that explain a junction's value: all of them, or every one that settles it (each
        alternative that holds, for an `or` or `any of` that holds)."""
        if conjunction == value:  # and: all hold; or: none holds
            return operands
        return [op for op in operands if self.evaluator.condition(op) == value]

    def junction(self, operands: list[ast.Expr], value: bool, conjunction: bool, path: str,
                 skip_named: bool) -> list[str]:
        reasons: list[str] = []
        for op in self.decisive(operands, value, conjunction):
            reasons.extend(self.why(op, value, path, skip_named))
        return reasons

    def block(self, node: ast.Block, value: bool, path: str, skip_named: bool) -> list[str]:
        if node.kind == ast.BlockKind.AT_LEAST:
            held = [i for i in node.items if self.evaluator.condition(i.body) is True]
            return [f"{len(held)} of {len(node.items)} hold; at least {node.count} needed"]
        items = node.items
        bodies = self.decisive([item.body for item in items], value, node.kind == ast.BlockKind.ALL)
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
        unit = next((o.unit for o in node.operands if isinstance(o, ast.QuantityLiteral) and o.unit), None)
        if value:
            parts = [self.operand(node.operands[0], unit)]
            for i in links:
                parts += [node.operators[i], self.operand(node.operands[i + 1], unit)]
            return " ".join(parts)
        failing = [i for i in links if self.evaluator.link(node, i) is False]
        statements = []
        for i in failing:
            left, right = node.operands[i], node.operands[i + 1]
            if self.evaluator.eval(left) is NONE or self.evaluator.eval(right) is NONE:
                none_side = left if self.evaluator.eval(left) is NONE else right
                statements.append(f"`{self.text(none_side)}` is none")
                continue
            statements.append(f"{self.operand(left, unit)} {node.operators[i].negated()} {self.operand(right, unit)}")
        return "; ".join(statements)

    def conditional(self, node: ast.Conditional, value: bool) -> list[str]:
        """The branch that applied, with the condition that chose it; for a failing `else` branch, also
        the branch that would have applied."""
        condition = self.evaluator.condition(node.condition)
        taken = node.then if condition else node.otherwise
        reasons = self.why(taken, value) if self.evaluator.condition(taken) is not None \
            else [self.unknown_reason(taken)]
        if condition is None:
            return reasons
        chosen = f"({self.branch_condition(node.condition, condition)})"
        if len(reasons) == 1:
            reasons = [f"{reasons[0]} {chosen}"]
        else:
            reasons.insert(0, f"`{self.text(taken)}` applies {chosen}")
        if not value and not condition:
            reasons.append(f"`{self.text(node.then)}` would apply only if `{self.text(node.condition)}`")
        return reasons

    def branch(self, node: ast.Conditional) -> tuple[ast.Expr, str] | None:
        """The value a conditional took and the conditions that chose it, following nested conditionals
        while their conditions are known; None while even the first is open."""
        taken: ast.Expr = node
        chosen: list[str] = []
        while isinstance(taken, ast.Conditional):
            condition = self.evaluator.condition(taken.condition)
            if condition is None:
                break
            chosen.append(self.branch_condition(taken.condition, condition))
            taken = taken.then if condition else taken.otherwise
        return (taken, ", ".join(chosen)) if chosen else None

    def branch_condition(self, node: ast.Expr, holds: bool) -> str:
        """A conditional's condition as the patient meets it: as written when it holds, else its negation,
        worded as the protocol would write it (`age > 5 years` for a false `age <= 5 years`)."""
        if holds:
            return self.text(node)
        match node:
            case ast.Not():
                return self.text(node.operand)
            case ast.NameRef():
                return f"not {node.name}"
            case ast.Compare() if len(node.operators) == 1 and NONE not in (
                    self.evaluator.eval(node.operands[0]), self.evaluator.eval(node.operands[1])):
                left, right = (self.wrapped(operand) for operand in node.operands)
                return f"{left} {node.operators[0].negated()} {right}"
            case ast.IsValue():
                return f"{self.wrapped(node.subject)} is {'' if node.negated else 'not '}{node.value}"
            case ast.InSet():
                return f"{self.wrapped(node.subject)} {'in' if node.negated else 'not in'} ({', '.join(node.values)})"
            case ast.IsNone():
                return f"{self.wrapped(node.subject)} is {'' if node.negated else 'not '}none"
            case ast.InValueSet():
                return f"{self.wrapped(node.subject)} {'in' if node.negated else 'not in'} {node.value_set}"
            case _:
                return f"not ({self.text(node)})"

    def membership(self, node: ast.IsValue | ast.InSet) -> str:
        subject = self.evaluator.eval(node.subject)
        written = "none" if subject is NONE else str(subject)
        name = self.text(node.subject)
        if isinstance(node, ast.IsValue):
            if (subject == node.value) != node.negated:
                return f"{name} is {written}" + (f", not {node.value}" if node.negated else "")
            return f"{name} is {written}" + ("" if node.negated else f", not {node.value}")
        inside = subject in node.values
        listed = ", ".join(node.values)
        return f"{name} is {written}, {'in' if inside else 'not in'} ({listed})"

    def rank(self, node: ast.IsRanked) -> str:
        subject = self.evaluator.eval(node.subject)
        written = "none" if subject is NONE else str(subject)
        enum = self.checked.types[node.subject.nid]
        holds = subject in node.among(enum.values) if isinstance(enum, EnumType) else False
        test = f"at {'most' if node.at_most else 'least'} {node.value}"
        return f"{self.text(node.subject)} is {written}, {'' if holds else 'not '}{test}"

    def value_set_membership(self, node: ast.InValueSet) -> str:
        subject = self.evaluator.eval(node.subject)
        inside = subject is not NONE and subject in self.checked.value_sets[node.value_set].members
        written = "none" if subject is NONE else str(subject)
        return f"{self.text(node.subject)} is {written}, {'in' if inside else 'not in'} {node.value_set}"

    def query(self, node: ast.Query, value: bool) -> list[str]:
        """Name the items that decide a history query: those that match, or the one that breaks `every`."""
        history = self.facts.get(node.collection)
        list_type = self.checked.facts[node.collection].type
        assert isinstance(history, History) and isinstance(list_type, ListType)
        matches = self.evaluator.matches.get(node.nid, [])
        condition = f" `{self.text(node.where)}`" if node.where is not None else ""
        wanted = node.kind == ast.QueryKind.EVERY and not value
        items = [index for index, truth in matches if truth is (not wanted)]
        if not matches and (value or node.kind != ast.QueryKind.EVERY):
            return [f"{node.collection} lists no items"]
        if node.kind == ast.QueryKind.EVERY:
            if value:
                return [f"{_all_items(len(matches), node.collection)}{condition}"]
            return [f"{list_type.show_item(history, i)} does not satisfy{condition}" for i in items[:3]]
        found = value == (node.kind == ast.QueryKind.ANY)
        if not found:
            return [f"{_no_item(len(matches), node.collection)}{condition}"]
        return [f"{list_type.show_item(history, i)} matches{condition}" for i in items[:3]]

    def none_test(self, node: ast.IsNone) -> str:
        subject = self.evaluator.eval(node.subject)
        name = self.text(node.subject)
        if subject is NONE:
            return f"{name} is none"
        return f"{name} is {self.show(subject, node.subject)}, not none"

    def within(self, node: ast.Within, value: bool) -> str:
        date, anchor = self.evaluator.eval(node.subject), self.evaluator.eval(node.anchor)
        if date is NONE:
            return f"{self.text(node.subject)} is none"
        if anchor is NONE:
            return f"{self.text(node.anchor)} is none"
        instants = isinstance(self.checked.type_of(node.anchor), DateTimeType)
        low, high = window(anchor, node, instants)
        show = format_instant if instants else format_date
        relation = "within" if value else "not within"
        return (f"{self.text(node.subject)} {show(date)} is {relation} {node.amount.text} {node.direction} "
                f"{self.text(node.anchor)} {show(anchor)} ({show(low)} to {show(high)})")

    def fact_statement(self, name: str) -> str:
        value = self.facts.get(name)
        if value is None:
            return f"`{name}` is missing"
        if value is NONE:
            return f"{name} is none"
        if isinstance(value, bool):
            return f"{name} is {'true' if value else 'false'}"
        return f"{name} is {shown(self.checked.facts[name].type, value)}"

    # ------------------------------------------------------------- values
    def operand(self, node: ast.Expr, unit: str | None = None) -> str:
        """An operand as written, with the patient's value where it is not a literal; a calculated
        value in the unit it is compared with (`unit`), and a named one with its inputs."""
        if isinstance(node, (ast.QuantityLiteral, ast.DateLiteral)):
            return self.text(node)
        if isinstance(node, ast.Conditional) and (branch := self.branch(node)) is not None:
            return f"{self.operand(branch[0], unit)} ({branch[1]})"  # the value that applied, and why
        value = self.evaluator.eval(node)
        written = "missing" if value is None else self.show(value, node, unit)
        if isinstance(node, ast.NameRef):
            definition = self.checked.definitions.get(node.name)
            body = definition.body if definition is not None and value is not None else None
            branch = self.branch(body) if isinstance(body, ast.Conditional) else None
            taken = branch[0] if branch is not None else body
            formula = f" = {self.filled(taken)}" if isinstance(taken, ast.Arithmetic) else ""
            return f"{node.name} {written}{formula}" + (f" ({branch[1]})" if branch is not None else "")
        return f"{self.text(node)} = {written}"

    def filled(self, node: ast.Expr) -> str:
        """A calculation with the patient's values in place of the facts (the branch a conditional took)."""
        match node:
            case ast.Arithmetic():
                parts = [self._filled_operand(node.operands[0])]
                for operator, operand in zip(node.operators, node.operands[1:], strict=True):
                    parts += [str(operator), self._filled_operand(operand)]
                return " ".join(parts)
            case ast.Negate():
                return f"-{self._filled_operand(node.operand)}"
            case ast.Conditional():
                taken = node.then if self.evaluator.condition(node.condition) else node.otherwise
                return self.filled(taken)
            case ast.NameRef() if node.name in self.checked.facts or node.nid in self.checked.field_refs:
                value = self.evaluator.eval(node)
                return "missing" if value is None else self.show(value, node)
            case _:
                return self.text(node)

    def _filled_operand(self, node: ast.Expr) -> str:
        text = self.filled(node)
        return f"({text})" if isinstance(node, ast.Arithmetic) else text

    def show(self, value: Any, node: ast.Expr, compared_in: str | None = None) -> str:
        """A node's value in the unit it is written in (a fact's declared unit, for a fact; for a
        calculation, the unit it is compared with, when of its kind)."""
        kind = self.checked.types.get(node.nid)
        if kind is None or isinstance(value, (bool, str)):
            return "none" if value is NONE else str(value).lower() if isinstance(value, bool) else str(value)
        unit = None
        if isinstance(kind, NumType):
            unit = self.checked.facts[node.name].unit if isinstance(node, ast.NameRef) and node.name in \
                self.checked.facts else kind.unit
            if compared_in is not None and unit != compared_in and _same_kind(kind, compared_in):
                unit = compared_in
        return shown(kind, value, unit)

    def text(self, node: ast.Expr | None) -> str:
        return "" if node is None else self.checked.text(node)

    def wrapped(self, node: ast.Expr) -> str:
        """An operand's text, in parentheses where it is itself a conditional or a junction."""
        text = self.text(node)
        return f"({text})" if isinstance(node, (ast.Conditional, ast.And, ast.Or, ast.Implies)) else text


def _all_items(count: int, collection: str) -> str:
    return f"the one item of {collection} satisfies" if count == 1 else f"all {count} items of {collection} satisfy"


def _no_item(count: int, collection: str) -> str:
    if count == 1:
        return f"the one item of {collection} does not match"
    return f"none of the {count} items of {collection} matches"


def _same_kind(kind: NumType, unit: str) -> bool:
    """Can a value of this type be shown in `unit`? (A calculation cancels units: compare dimensions.)"""
    from eligib.values.units import parse_unit

    written = parse_unit(unit)
    return kind.kind[0] == written.dims and kind.kind[2] == written.kind[2]
