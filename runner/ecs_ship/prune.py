"""Pure: which revisions of a task-definition family `keep_revisions: N` (and `ecs-ship prune`) deregister.

The newest N ACTIVE revisions stay, and so does every older one that something may still need: a revision a
service runs or a deployment lists (ECS keeps running it, but no service could be pointed back at it once it
is INACTIVE), and the one a rollback returns to. Everything else older is deregistered, oldest first; nothing
is ever deleted. Reading what exists and deregistering is revisions.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .plan import ApiCall


def family_of(arn: str) -> str:
    """`family` of `arn:...:task-definition/family:7` (or of `family:7`)."""
    return arn.rsplit("/", 1)[-1].rpartition(":")[0]


def number_of(arn: str) -> int:
    """The revision number of `arn:...:task-definition/family:7` (or of `family:7`)."""
    return int(arn.rsplit(":", 1)[-1])


def _name(arn: str) -> str:
    # Services name revisions by full ARN, people by family:revision: compare by the latter.
    return arn.rsplit("/", 1)[-1]


def deploy_keeps(before: str, rollback_target: str | None) -> dict[str, str]:
    """What a deploy itself knows must stay: the revision that ran before it, and the one that last served (its
    rollback target), which the service may no longer list once the new revision serves."""
    kept = {before: "what ran before this deploy"}
    if rollback_target:
        kept[rollback_target] = "what served before this deploy (its rollback target)"
    return kept


@dataclass(frozen=True)
class Selection:
    family: str
    keep: int
    kept: tuple[tuple[str, str], ...]  # (revision ARN, why it stays), newest first
    deregister: tuple[str, ...]  # oldest first
    later: int = 0  # left for a later run by the limit

    def calls(self) -> tuple[ApiCall, ...]:
        return tuple(
            ApiCall("ecs", "deregister_task_definition", {"taskDefinition": arn}, f"older than the newest {self.keep}")
            for arn in self.deregister
        )

    def lines(self) -> list[str]:
        out = [f"  keep {_name(arn)}: {why}" for arn, why in self.kept]
        out += [f"  deregister {_name(arn)}" for arn in self.deregister]
        if self.later:
            out.append(f"  {self.later} more older revision(s) left for a later run")
        return out


def select(
    family: str,
    active: Sequence[str],
    keep: int,
    protected: Mapping[str, str],
    *,
    coming: int = 0,
    limit: int | None = None,
) -> Selection:
    """Of the family's ACTIVE revisions `active`, those to deregister and those kept, with why.

    ``protected`` maps revision ARNs (or family:revision) to why they must stay. ``coming``: revisions about to
    be registered, which will be the newest and take that many of the N places (a plan made before the deploy).
    ``limit`` bounds how many one run deregisters (the oldest first); the rest wait for the next run.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    guarded = {_name(arn): why for arn, why in protected.items()}
    mine = sorted((a for a in active if family_of(a) == family), key=number_of, reverse=True)
    kept: list[tuple[str, str]] = []
    doomed: list[str] = []
    places = max(keep - coming, 0)
    for i, arn in enumerate(mine):
        if i < places:
            kept.append((arn, f"one of the newest {keep}"))
        elif _name(arn) in guarded:
            kept.append((arn, guarded[_name(arn)]))
        else:
            doomed.append(arn)
    doomed.reverse()
    later = 0
    if limit is not None and len(doomed) > limit:
        later = len(doomed) - limit
        doomed = doomed[:limit]
    return Selection(family, keep, tuple(kept), tuple(doomed), later)
