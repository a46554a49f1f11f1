"""Assessment time points: which criteria are judged at which point of the study (docs/language.md).

A protocol may list its time points in order (`timepoints: screening, lymphodepletion, infusion`).
A criterion is assessed at the points it names (`assessed at screening and infusion`); one that
names none is assessed at the points of the facts it reads that name some (`pregnancy_test:
datetime, assessed at lymphodepletion`), else at the first. At a time point T, the criteria first
assessed at or before T are judged; those assessed again, or only, after T are pending.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from eligib.language import ast
from eligib.language.diagnostics import Diagnostic, error, suggest
from eligib.language.source import Span

FINAL = "final"  # `--at final`: every criterion, whatever the time points


class _Declared(Protocol):
    @property
    def decl(self) -> ast.FactDecl: ...


def declared_timepoints(protocol: ast.Protocol) -> tuple[str, ...]:
    return protocol.timepoints.names if protocol.timepoints is not None else ()


def criterion_timepoints(protocol: ast.Protocol, criterion: ast.Criterion, facts: Mapping[str, _Declared],
                         reads: Collection[str]) -> tuple[str, ...]:
    """The time points a criterion is assessed at, in the declared order (empty: no time points)."""
    order = declared_timepoints(protocol)
    if not order:
        return ()
    if criterion.assessed:
        return tuple(point for point in order if point in criterion.assessed) or (order[0],)
    per_fact = [[order.index(p) for p in facts[name].decl.assessed if p in order] for name in reads if name in facts]
    per_fact = [indexes for indexes in per_fact if indexes]
    if not per_fact:
        return (order[0],)
    known_from = max(min(indexes) for indexes in per_fact)  # judged once every fact it reads is known
    return tuple(order[i] for i in sorted({i for indexes in per_fact for i in indexes if i >= known_from}))


def check_timepoints(protocol: ast.Protocol, facts: Mapping[str, _Declared],
                     criterion_facts: Mapping[str, Collection[str]]) -> list[Diagnostic]:
    """Unknown or repeated time points, and a criterion assessed before a fact it reads is known."""
    order = declared_timepoints(protocol)
    found: list[Diagnostic] = []
    if protocol.timepoints is not None:
        repeated = sorted({name for name in order if order.count(name) > 1})
        if repeated:
            found.append(error("duplicate-timepoints", f"time point `{repeated[0]}` is listed twice",
                               protocol.timepoints.span, "in `timepoints:`", help="list each time point once"))
        if FINAL in order:
            found.append(error("duplicate-timepoints", f"`{FINAL}` cannot name a time point", protocol.timepoints.span,
                               "in `timepoints:`", help=f"`--at {FINAL}` already means every criterion; "
                                                        "name the last time point after its event (`infusion`)"))
    for name, info in facts.items():
        found += [error("timed-field", f"field `{field.name}` of history `{name}` has `assessed at`", field.span,
                        "a field has no time point of its own",
                        help=f"put it on the history: `{name}: list, assessed at {' and '.join(field.assessed)}:`")
                  for field in info.decl.fields if field.assessed]
    named = [(f"fact `{name}`", info.decl.assessed, info.decl.span) for name, info in facts.items()]
    named += [(f"criterion `{c.id}`", c.assessed, c.span) for c in protocol.criteria]
    for owner, points, span in named:
        for point in points:
            if point not in order:
                found.append(_unknown(owner, point, order, span))
    for criterion in protocol.criteria:
        if criterion.assessed and set(criterion.assessed) <= set(order):
            found += _too_early(criterion, facts, criterion_facts.get(criterion.id, ()), order)
    return found


def _unknown(owner: str, point: str, order: tuple[str, ...], span: Span | None) -> Diagnostic:
    if not order:
        return error("unknown-timepoint", f"{owner} is assessed at `{point}`, but the protocol lists no time points",
                     span, "no `timepoints:`", help=f"declare them in order, e.g. `timepoints: screening, {point}`")
    return error("unknown-timepoint", f"{owner} is assessed at `{point}`, which is not a time point", span,
                 "not in `timepoints:`", help=suggest(point, order) or f"time points: {', '.join(order)}")


def _too_early(criterion: ast.Criterion, facts: Mapping[str, _Declared], reads: Collection[str],
               order: tuple[str, ...]) -> list[Diagnostic]:
    first = min(order.index(point) for point in criterion.assessed)
    for name in sorted(reads):
        points = [order.index(point) for point in facts[name].decl.assessed if point in order] if name in facts else []
        if points and min(points) > first:
            return [error("assessed-too-early", f"criterion `{criterion.id}` is assessed at `{order[first]}`, but "
                          f"reads `{name}`, first assessed at `{order[min(points)]}`", criterion.span,
                          "judged before its fact is known",
                          help=f"assess it from `{order[min(points)]}` on: "
                               f"`assessed at {' and '.join(order[i] for i in sorted(set(points)))}`")]
    return []


def judged_at(assessed: Mapping[str, tuple[str, ...]], order: tuple[str, ...], point: str) -> list[str]:
    """The criteria judged at `point`: first assessed at it or before."""
    limit = order.index(point)
    return [cid for cid, points in assessed.items() if order.index(points[0]) <= limit]


def pending_at(assessed: Mapping[str, tuple[str, ...]], order: tuple[str, ...],
               point: str) -> dict[str, tuple[str, ...]]:
    """The criteria still to be assessed after `point`, with the later time points they are assessed at."""
    limit = order.index(point)
    later = {cid: tuple(p for p in points if order.index(p) > limit) for cid, points in assessed.items()}
    return {cid: points for cid, points in later.items() if points}
