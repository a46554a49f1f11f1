"""What a coordinator should do next for one patient, computed with the solver (docs/guidance.md).

- Undetermined: each missing fact that matters with the condition that keeps the patient eligible
  (conditions.py), ranked by how much it decides, and a smallest set to collect first.
- Ineligible: for each blocking criterion, whether its facts can change; a minimal set of changes of
  modifiable facts that makes the patient eligible, each with its condition and an example value.
- Any verdict: the dates from which a blocking or open time window clears as a modifiable date moves.

Computed only when an output asks (the CLI's text, JSON and HTML do); `Engine.check` never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eligib.analysis.conditions import FactCondition, fact_condition, nearest
from eligib.analysis.summary import summary_line
from eligib.analysis.thresholds import Interacts, Thresholds
from eligib.engine import Engine
from eligib.inputs.facts import Patient, facts_file
from eligib.language import ast
from eligib.language.checked import CheckedProtocol
from eligib.limits import GUIDANCE_SECONDS
from eligib.logic.budget import Budget, SolverTimeout
from eligib.logic.evaluate import Evaluator, Verdict, criterion_outcome
from eligib.logic.outlook import criterion_possible, eligible_certain, eligible_completion, eligible_possible
from eligib.logic.solver import Status, linked_facts, settled
from eligib.report.explanation import Explanation, PathStatus
from eligib.values.types import DateTimeType, DateType, Value, shown

Facts = Mapping[str, Value]


@dataclass
class MissingFactGuidance:
    """A missing fact that matters: what it decides and the values that keep the patient eligible."""

    fact: str
    description: str
    decides: list[str]  # criteria it can decide
    paths: list[str]  # open named paths that read it
    gates: list[str]  # other missing facts that apply only for some of its values (`only if`)
    condition: FactCondition

    @property
    def weight(self) -> int:
        return len(self.decides) + len(self.paths) + len(self.gates)


@dataclass
class SmallestSet:
    """A set of facts no member of which can be left out, with a lower bound on the size of any such set."""

    facts: list[str]
    at_least: int

    @property
    def exact(self) -> bool:
        return len(self.facts) == self.at_least


@dataclass
class ClearDate:
    """From `date` on (the value of date fact `fact`), criterion `criterion` no longer keeps the patient out."""

    criterion: str
    fact: str
    date: str
    eligible_then: bool  # with that date and nothing else changed, the patient is eligible


@dataclass
class BlockingOutlook:
    criterion: str
    modifiable: list[str]  # known facts it reads that can change
    fixed: list[str]
    can_pass: bool  # some values of its modifiable facts make it pass (the other facts as they are)


@dataclass
class Change:
    fact: str
    current: str
    eligible_if: str | None  # the new value's condition, the other changes free
    example: str  # a new value that works together with the other changes' examples
    example_value: Any  # the same, as a facts file writes it


@dataclass
class Guidance:
    summary: str  # one line: the verdict, why, and what to do next
    missing: list[MissingFactGuidance] = field(default_factory=list)  # most valuable first
    collect_first: SmallestSet | None = None
    clears_on: list[ClearDate] = field(default_factory=list)
    blocking: list[BlockingOutlook] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    changes_bound: SmallestSet | None = None
    changes_leave_open: list[str] = field(default_factory=list)  # facts that still decide after the changes
    no_change_reason: str = ""  # why no change of modifiable facts can make the patient eligible
    incomplete: str = ""  # what was left out when the solver's time ran out


def guide(engine: Engine, patient: Patient, explanation: Explanation, seconds: float | None = GUIDANCE_SECONDS
          ) -> Guidance:
    """Guidance for one checked patient. At a time point (`explanation.at`) conditions and changes are
    judged by the whole protocol, the checks still to come included, so that what guidance proposes does
    not fail later; what to collect first is judged at the time point."""
    now = engine.at(explanation.at) if explanation.at is not None else engine
    guide_ = _Guide(engine, now, patient.values, explanation, Budget(seconds))
    try:
        guide_.run()
    except SolverTimeout as timeout:
        guide_.result.incomplete = f"guidance stopped early: {timeout.describe()}"
    guide_.result.summary = summary_line(explanation, guide_.result)
    return guide_.result


class _Guide:
    def __init__(self, engine: Engine, now: Engine, facts: Facts, explanation: Explanation, budget: Budget) -> None:
        self.engine, self.checked, self.facts = engine, engine.checked, dict(facts)
        self.now = now  # the protocol as judged at the explanation's time point (the engine itself without one)
        self.explanation, self.budget = explanation, budget
        self.result = Guidance("")
        self.modifiable = modifiable_facts(self.checked)

    def source(self, facts: Facts) -> Callable[[], Any]:
        return lambda: self.engine.compiled(facts)

    def possible(self, facts: Facts) -> bool:
        return eligible_possible(self.checked, facts, self.source(facts), self.budget)

    def certain(self, facts: Facts) -> bool:
        return eligible_certain(self.checked, facts, self.source(facts), self.budget)

    def certain_now(self, facts: Facts) -> bool:
        """Eligible in every completion at the time point judged (what collecting facts now can reach)."""
        return eligible_certain(self.now.checked, facts, lambda: self.now.compiled(facts), self.budget)

    def run(self) -> None:
        verdict = self.explanation.verdict
        if verdict == Verdict.UNDETERMINED:
            self.result.missing = self.missing()
            self.result.collect_first = self.collect_first()
        self.result.clears_on = self.clear_dates()
        if verdict == Verdict.INELIGIBLE:
            self.result.blocking = self.blocking_outlook()
            self.changes()

    # ------------------------------------------------------------ missing facts
    def missing(self) -> list[MissingFactGuidance]:
        order = list(self.checked.facts)
        decisive = [m.name for m in self.explanation.missing_facts]
        found = []
        for missing in self.explanation.missing_facts:
            condition = fact_condition(self.checked, self.facts, missing.name, self.possible)
            condition.interacts_with = sorted(set(condition.interacts_with) | self.sharing(missing.name, decisive))
            found.append(MissingFactGuidance(missing.name, missing.description, list(missing.criteria),
                                             self.open_paths(missing.name, missing.criteria),
                                             self.gated(missing.name, decisive), condition))
        return sorted(found, key=lambda m: (not m.condition.settles_alone, -m.weight, order.index(m.fact)))

    def sharing(self, fact: str, decisive: list[str]) -> set[str]:
        """The other decisive facts read by the open criteria this one decides."""
        findings = {c.id: c for c in self.explanation.criteria}
        criteria = next(m.criteria for m in self.explanation.missing_facts if m.name == fact)
        return {other for cid in criteria for other in findings[cid].missing if other != fact and other in decisive}

    def open_paths(self, fact: str, criteria: Iterable[str]) -> list[str]:
        found = []
        for cid in criteria:
            for path in self.checked.paths_of(cid):
                dotted = f"{cid}.{path.dotted}"
                if fact in self.checked.facts_of(path.item.body) and \
                        self.explanation.path_status(dotted) == PathStatus.UNKNOWN:
                    found.append(dotted)
        return found

    def gated(self, fact: str, decisive: list[str]) -> list[str]:
        return [name for name in decisive if name != fact and (guard := self.checked.facts[name].guard) is not None
                and fact in self.checked.facts_of(guard)]

    def collect_first(self) -> SmallestSet | None:
        """A smallest set of missing facts some values of which make the patient eligible whatever the
        rest are. Two starts, each minimised by leaving out facts (least valuable first): values chosen from
        each fact's own condition, and an eligible completion found by the solver; the smaller set wins."""
        ranked = [m.fact for m in self.result.missing]
        starts = [self.values_from_conditions()]
        now = self.now
        completion = eligible_completion(now.checked, self.facts, lambda: now.compiled(self.facts), self.budget)
        if completion is not None:  # only values a facts file can state (not x = 1/3): others from conditions
            writable = {f: v for f, v in completion.items() if self.file_value(f, v) is not None}
            starts.append({**{f: v for f, v in starts[0].items() if f not in writable}, **writable})
        best: list[str] | None = None
        for values in starts:
            chosen = ranked if all(f in values for f in ranked) else list(values)
            if not self.certain_now({**self.facts, **{f: values[f] for f in chosen}}):
                continue
            for fact in reversed(list(chosen)):
                trial = [f for f in chosen if f != fact]
                if self.certain_now({**self.facts, **{f: values[f] for f in trial}}):
                    chosen = trial
            if chosen and (best is None or len(chosen) < len(best)):
                best = chosen
        if best is None:
            return None
        open_criteria = [set(c.missing) for c in self.explanation.criteria if c.status == Status.UNKNOWN]
        return SmallestSet(best, _disjoint_count(self.linked(open_criteria)))

    def values_from_conditions(self) -> dict[str, Value]:
        """For each missing fact that matters, a value that meets its own condition (a threshold itself)."""
        found: dict[str, Value] = {}
        for missing in self.result.missing:
            value = nearest(self.checked.facts[missing.fact], missing.condition, None)
            if value is not None:
                found[missing.fact] = value
        return found

    def linked(self, groups: list[set[str]]) -> list[set[str]]:
        """Fact groups grown by the protocol's assumptions (an assumption can tie one fact's value to another)."""
        assumed = [self.checked.facts_of(a.body) for a in self.checked.assumptions.values()]
        return [set(linked_facts(assumed, group)) for group in groups]

    # -------------------------------------------------------------- clear dates
    def clear_dates(self) -> list[ClearDate]:
        """For each blocking or open criterion: the first value of a known, modifiable date it reads (later
        than today's value) from which it lets the patient through."""
        found = []
        for finding in self.explanation.criteria:
            if not (finding.blocks is True or finding.status == Status.UNKNOWN):
                continue
            for fact in self.movable_dates(finding.id):
                date = self.first_clear(finding.id, fact)
                if date is not None:
                    moved = {**self.facts, fact: date}
                    info = self.checked.facts[fact]
                    found.append(ClearDate(finding.id, fact, shown(info.type, date), self.certain(moved)))
        return found

    def movable_dates(self, cid: str) -> list[str]:
        return [name for name in sorted(self.checked.criterion_facts[cid])
                if isinstance(self.checked.facts[name].type, (DateType, DateTimeType))
                and self.modifiable[name] and settled(self.facts.get(name))]

    def first_clear(self, cid: str, fact: str) -> int | None:
        try:
            points = Thresholds(self.checked, self.facts, fact).find()
        except Interacts:
            return None
        criterion = self.checked.criteria[cid]
        current = self.facts[fact]
        assert isinstance(current, int)
        for point in sorted(p for p in points if p > current):
            evaluator = Evaluator(self.checked, {**self.facts, fact: point})
            if criterion_outcome(evaluator, criterion)[2] is True:
                return int(point)
        return None

    # ----------------------------------------------------------------- changes
    def known_reads(self, cid: str) -> list[str]:
        return [name for name in sorted(self.checked.criterion_facts[cid]) if settled(self.facts.get(name))]

    def blocking_outlook(self) -> list[BlockingOutlook]:
        found = []
        for cid in self.blocking_criteria():
            reads = self.known_reads(cid)
            modifiable = [n for n in reads if self.modifiable[n]]
            tied = self.linked([set(reads)])[0]  # facts an assumption ties to them may move with them
            released = self.without(n for n in tied if self.modifiable[n])
            can_pass = self.criterion_possible(released, cid)
            found.append(BlockingOutlook(cid, modifiable, [n for n in reads if n not in modifiable], can_pass))
        return found

    def blocking_criteria(self) -> list[str]:
        found = list(self.explanation.blocking)
        for conflict in self.explanation.conflicts:
            found += [cid for cid in conflict if cid not in found]
        return found

    def criterion_possible(self, facts: Facts, cid: str) -> bool:
        """Can this criterion pass for some values of the facts missing from `facts`?"""
        return criterion_possible(self.checked, facts, cid, self.source(facts), self.budget)

    def changes(self) -> None:
        """A minimal set of changes of modifiable facts that makes the patient eligible (or why none can).
        Of the minimal sets found leaving facts out in either order, the one whose examples a facts file can
        state (a change to exactly 1/3 helps no one), that leaves nothing open, with the fewest facts wins."""
        modifiable = [n for n in self.checked.facts if self.modifiable[n] and settled(self.facts.get(n))]
        first = [n for cid in self.blocking_criteria() for n in self.known_reads(cid) if n in modifiable]
        candidates = list(dict.fromkeys(first))
        if not self.possible(self.without(candidates)):
            candidates = modifiable
            if not self.possible(self.without(candidates)):
                fixed = sorted({n for b in self.result.blocking for n in b.fixed})
                self.result.no_change_reason = ("no change of modifiable facts can make this patient eligible"
                                                + (f": it depends on fixed facts {', '.join(fixed)}" if fixed else ""))
                return
        tried = []
        for order in (candidates, list(reversed(candidates))):
            chosen = self.minimal_changes(order)
            examples = self.examples(chosen)
            needed, open_facts = self.also_needed(chosen, examples)
            unwritable = sum(self.file_value(f, examples.get(f)) is None for f in chosen + needed)
            tried.append(((unwritable, len(open_facts), len(chosen) + len(needed)), chosen, needed, examples,
                          open_facts))
        _, chosen, needed, examples, open_facts = min(tried, key=lambda found: found[0])
        changes = []  # kept apart until complete: a time-out must not leave half a set of changes
        for fact in chosen + needed:
            info = self.checked.facts[fact]
            others = {**self.without(chosen), **{f: v for f, v in examples.items() if f != fact}}
            condition = fact_condition(self.checked, others, fact, self.possible)
            example = examples.get(fact)
            current = self.facts.get(fact)
            changes.append(Change(fact, "unknown" if current is None else shown(info.type, current),
                                  condition.eligible_if, shown(info.type, example) if example is not None else "",
                                  self.file_value(fact, example)))
        self.result.changes = changes
        self.result.changes_leave_open = open_facts
        groups = self.change_groups(modifiable)
        self.result.changes_bound = SmallestSet(chosen + needed, _disjoint_count(self.linked(groups)))

    def minimal_changes(self, order: list[str]) -> list[str]:
        """Facts of `order` whose release keeps the patient possibly eligible, left out one at a time from
        the end."""
        chosen = list(order)
        for fact in reversed(order):
            trial = [f for f in chosen if f != fact]
            if self.possible(self.without(trial)):
                chosen = trial
        return chosen

    def also_needed(self, chosen: list[str], examples: dict[str, Value]) -> tuple[list[str], list[str]]:
        """Missing facts that must also have suitable values for the changed patient to be eligible (a fact
        the patient file lacks, or one that applies only once a change is made: `only if`), fewest kept,
        their examples added to `examples`; and the facts that would still decide after all that (a history
        known in part keeps its listed items: guidance never proposes to drop them)."""
        applied = {**self.without(chosen), **examples}
        if self.certain(applied):
            return [], []
        completion = eligible_completion(self.checked, applied, self.source(applied), self.budget) or {}
        needed = [f for f in self.checked.facts if f in completion and f not in applied]
        for fact in reversed(list(needed)):
            trial = [f for f in needed if f != fact]
            if self.certain({**applied, **{f: completion[f] for f in trial}}):
                needed = trial
        nearer = self.examples(needed, applied)
        chosen_values = nearer if nearer and self.certain({**applied, **nearer}) else \
            {f: completion[f] for f in needed}
        examples.update(chosen_values)
        self.refine(chosen + needed, examples)
        final = {**applied, **examples}
        if self.certain(final):
            return needed, []
        return needed, sorted(self.engine.decide(Patient(final), None).missing)

    def refine(self, changed: list[str], examples: dict[str, Value]) -> None:
        """Each example moved as near its current value as the others' allow, now that every changed and
        needed fact has one (a condition shared with a fact that was missing becomes the fact's own)."""
        base = self.without(changed)
        keeps = self.certain if self.certain({**base, **examples}) else self.possible
        for fact in changed:
            others = {**base, **{f: v for f, v in examples.items() if f != fact}}
            value = nearest(self.checked.facts[fact], fact_condition(self.checked, others, fact, self.possible),
                            self.facts.get(fact))
            if value is not None and keeps({**others, fact: value}):
                examples[fact] = value

    def change_groups(self, modifiable: list[str]) -> list[set[str]]:
        """Facts of which any set of changes needs one each: a blocking criterion's modifiable facts, and a
        conflict's (changing one side of a conflict resolves it)."""
        groups = [set(self.known_reads(cid)) & set(modifiable) for cid in self.explanation.blocking]
        groups += [{n for cid in conflict for n in self.known_reads(cid)} & set(modifiable)
                   for conflict in self.explanation.conflicts]
        return groups

    def examples(self, chosen: list[str], base: Facts | None = None) -> dict[str, Value]:
        """New values for the changed facts (on `base`, by default the patient without them), one at a
        time: the qualifying value nearest the current one with the facts not yet chosen free (so some
        values for them still qualify); a model's value where a fact has no condition of its own."""
        start = self.without(chosen) if base is None else dict(base)
        fixed: dict[str, Value] = {}
        for index, fact in enumerate(chosen):
            state = {**{f: v for f, v in start.items() if f not in chosen[index:]}, **fixed}
            condition = fact_condition(self.checked, state, fact, self.possible)
            value = nearest(self.checked.facts[fact], condition, self.facts.get(fact))
            if value is None or not self.possible({**state, fact: value}):
                completion = eligible_completion(self.checked, state, self.source(state), self.budget) or {}
                value = completion.get(fact)
            if value is None:
                return {}
            fixed[fact] = value
        for fact in chosen:  # then each moved as near its current value as the others' examples allow
            others = {**{f: v for f, v in start.items() if f not in chosen}, **{f: v for f, v in fixed.items()
                                                                               if f != fact}}
            value = nearest(self.checked.facts[fact], fact_condition(self.checked, others, fact, self.possible),
                            self.facts.get(fact))
            if value is not None and self.possible({**others, fact: value}):
                fixed[fact] = value
        return fixed

    def file_value(self, fact: str, value: Value | None) -> Any:
        """A value as a facts file writes it (None when no file can state it exactly, like 1/3 mg/dL)."""
        try:
            return None if value is None else facts_file(self.checked, {fact: value})[fact]
        except ValueError:
            return None

    def without(self, names: Iterable[str]) -> dict[str, Value]:
        dropped = set(names)
        return {n: v for n, v in self.facts.items() if n not in dropped}


def modifiable_facts(checked: CheckedProtocol) -> dict[str, bool]:
    """Which facts guidance may propose to change: as declared (`fixed`, `modifiable`), else by type. An
    enumeration (a diagnosis) and a history (what happened) are fixed; a number (a lab that can be
    repeated) and a boolean (an attestation) are modifiable; a date is modifiable when it anchors a time
    window (`within ... before screening_date`, `lymphodepletion_date - end`), a visit that can move, and
    fixed otherwise, the date of an event."""
    anchors = _anchors(checked)
    found = {}
    for name, info in checked.facts.items():
        declared = info.decl.change
        if declared is not None:
            found[name] = declared == ast.Change.MODIFIABLE
        elif isinstance(info.type, (DateType, DateTimeType)):
            found[name] = name in anchors
        else:
            found[name] = info.decl.type.kind not in (ast.FactKind.ENUM, ast.FactKind.LIST)
    return found


def _anchors(checked: CheckedProtocol) -> set[str]:
    """Date facts that anchor a window: a `within`'s anchor, or the date a difference starts from."""
    roots = [c.body for c in checked.criteria.values()] + [c.guard for c in checked.criteria.values() if c.guard]
    roots += [d.body for d in checked.definitions.values()]
    found: set[str] = set()
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.Within):
                found |= _named(checked, node.anchor)
            elif isinstance(node, ast.Arithmetic) and node.operators[0] == ast.Operator.SUBTRACT and \
                    isinstance(checked.type_of(node.operands[1]), (DateType, DateTimeType)):
                found |= _named(checked, node.operands[0])
    return found


def _named(checked: CheckedProtocol, node: ast.Expr) -> set[str]:
    """The fact a node names (through definitions), if it is one."""
    while isinstance(node, ast.NameRef) and node.name in checked.definitions:
        node = checked.definitions[node.name].body
    if isinstance(node, ast.NameRef) and node.nid not in checked.field_refs and node.name in checked.facts:
        return {node.name}
    return set()


def _disjoint_count(groups: list[set[str]]) -> int:
    """How many of the groups share no fact (greedy, smallest first): each needs a fact of its own, so any
    set meeting every group has at least this many facts."""
    used: set[str] = set()
    count = 0
    for group in sorted(groups, key=len):
        if group and not group & used:
            used |= group
            count += 1
    return count
