"""The usage report: teams counted per sign-up week, plan and size bucket, with a k-anonymity floor.

A cell describes a group of teams and their members. A cell with fewer than ``k`` teams
or fewer than ``k`` members could single out a team (or a person), so it is left out and
only counted as suppressed. The report carries no totals: a total minus the cells shown
would give a suppressed cell back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

# Team sizes (current members) in buckets; the last has no upper bound.
SIZE_BUCKETS: tuple[tuple[int, int | None, str], ...] = (
    (1, 1, "1"),
    (2, 5, "2-5"),
    (6, 20, "6-20"),
    (21, 100, "21-100"),
    (101, None, "101+"),
)
EMPTY = "0"


class TeamFacts(Protocol):
    @property
    def created_at(self) -> int: ...
    @property
    def plan(self) -> str: ...
    @property
    def members(self) -> int: ...


@dataclass(frozen=True)
class UsageCell:
    week: str  # ISO week of sign-up, e.g. "2026-W48"
    plan: str
    size: str  # a bucket of SIZE_BUCKETS
    teams: int
    members: int


@dataclass(frozen=True)
class UsageReport:
    k: int
    cells: list[UsageCell]
    suppressed: int


def size_bucket(members: int) -> str:
    for low, high, label in SIZE_BUCKETS:
        if members >= low and (high is None or members <= high):
            return label
    return EMPTY


def iso_week(ms: int) -> str:
    year, week, _ = datetime.fromtimestamp(ms / 1000, UTC).isocalendar()
    return f"{year}-W{week:02d}"


def usage_report(teams: Iterable[TeamFacts], k: int) -> UsageReport:
    """Count teams and members per (sign-up week, plan, size bucket); suppress cells below ``k``."""
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for team in teams:
        cell = counts[(iso_week(team.created_at), team.plan, size_bucket(team.members))]
        cell[0] += 1
        cell[1] += team.members
    shown, suppressed = [], 0
    for (week, plan, size), (n_teams, n_members) in sorted(counts.items()):
        if n_teams < k or n_members < k:
            suppressed += 1
        else:
            shown.append(UsageCell(week, plan, size, n_teams, n_members))
    return UsageReport(k, shown, suppressed)
