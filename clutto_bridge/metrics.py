"""Prometheus metrics of one bridge: aggregated counts, never an identifier (promise P15, docs/promises.md).

Every label value comes from a fixed set: the domain's own vocabularies below (plans,
roles, room kinds, job states, enforcement rules, outcomes) and the sets the wiring adds
with ``allow`` (command names of the registry, route templates of the API, job kinds).
A value outside its set is counted as ``other``, so a user id, room id, team name or
address can never become a label, whatever a caller passes.

Each bridge has its own ``CollectorRegistry`` (never the process-wide default), so
several bridges in one process (the tests) keep separate counts. Gauges of what exists
(teams, members, rooms, queued jobs) are set from the stores just before a scrape
(``set_snapshot``), the events in flight from their owner (``count_in_flight``); counters
are incremented where things happen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.trial import PLANS

__all__ = ["CONTENT_TYPE", "ENFORCEMENT_RULES", "Metrics", "Snapshot"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "other"

# What the audit log calls an enforcement action, and the rule it enforces.
ENFORCEMENT_RULES: Mapping[str, str] = {
    AuditAction.INTEGRATION_REMOVED: "integration_bot",
    AuditAction.WIDGET_REMOVED: "integration_widget",
    AuditAction.PROFILE_RESET: "profile",
    AuditAction.POWER_LEVELS_REVERTED: "power_levels",
    AuditAction.PURGE_BLOCKED_BY_HOLD: "legal_hold",
}

_FIXED: dict[str, frozenset[str]] = {
    "plan": frozenset(PLANS),
    "team_state": frozenset({"creating", "active", "deleting"}),
    "role": frozenset({"owner", "admin", "member", "guest"}),
    "membership": frozenset({"invited", "joined"}),
    "room_kind": frozenset({"group", "direct"}),
    "archived": frozenset({"true", "false"}),
    "job_state": frozenset({"queued", "running", "done", "failed", "retry"}),
    "outcome": frozenset({"ok", "refused", "failed", "unknown"}),
    "rule": frozenset(ENFORCEMENT_RULES.values()),
    "method": frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}),
    "command": frozenset({"unknown"}),
    "route": frozenset({"unmatched"}),
    "job_kind": frozenset(),
}


@dataclass(frozen=True)
class Snapshot:
    """Counts of what exists now, read from the stores at scrape time. Keys are label values."""

    teams: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (plan, state)
    members: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (role, membership)
    rooms: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (kind, archived)
    jobs: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (kind, state)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._allowed = {name: set(values) for name, values in _FIXED.items()}
        self.teams = Gauge("clutto_teams", "Teams by plan and state", ["plan", "state"], registry=r)
        self.members = Gauge(
            "clutto_team_members", "Current team memberships by role and membership", ["role", "membership"], registry=r
        )
        self.rooms = Gauge("clutto_team_rooms", "Team rooms by kind, archived or not", ["kind", "archived"], registry=r)
        self.job_queue = Gauge(
            "clutto_jobs_unfinished", "Jobs queued or running, by kind", ["kind", "state"], registry=r
        )
        self.commands = Counter(
            "clutto_commands", "Bot commands run, by command and outcome", ["command", "outcome"], registry=r
        )
        self.api_requests = Counter(
            "clutto_api_requests",
            "Provisioning API requests by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.jobs_finished = Counter(
            "clutto_jobs_finished", "Job runs ended, by kind and state", ["kind", "state"], registry=r
        )
        self.job_duration = Histogram(
            "clutto_job_duration_seconds",
            "Duration of one run of a job, by kind",
            ["kind"],
            registry=r,
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, float("inf")),
        )
        self.events_redacted = Counter(
            "clutto_retention_events_redacted", "Events redacted by retention sweeps", registry=r
        )
        self.rooms_purged = Counter(
            "clutto_retention_rooms_purged", "Room histories purged on the homeserver by retention sweeps", registry=r
        )
        self.enforcement = Counter(
            "clutto_enforcement_actions", "Enforcement actions taken, by rule", ["rule"], registry=r
        )
        self.reaches = Gauge(
            "clutto_homeserver_reaches_bridge",
            "1 when the homeserver's last ping reached the bridge, 0 when it failed, -1 when not known",
            registry=r,
        )
        self.reaches.set(-1)
        self.events_in_flight = Gauge(
            "clutto_events_in_flight",
            "Tasks of event handling in flight: room lanes and the background work of events",
            registry=r,
        )

    # --- label values ------------------------------------------------------------------------

    def allow(self, label: str, values: Iterable[str]) -> None:
        """Add values (command names, route templates, job kinds) to a label's fixed set."""
        self._allowed[label].update(str(v) for v in values)

    def _label(self, label: str, value: object) -> str:
        text = str(value)
        return text if text in self._allowed[label] else OTHER

    # --- counters, where things happen ----------------------------------------------------------

    def command_run(self, command: str, outcome: str) -> None:
        self.commands.labels(self._label("command", command), self._label("outcome", outcome)).inc()

    def api_request(self, method: str, route: str, status: int) -> None:
        status_label = str(status) if 100 <= status <= 599 else OTHER
        self.api_requests.labels(self._label("method", method), self._label("route", route), status_label).inc()

    def job_ended(self, kind: str, state: str, seconds: float) -> None:
        kind = self._label("job_kind", kind)
        self.jobs_finished.labels(kind, self._label("job_state", state)).inc()
        self.job_duration.labels(kind).observe(max(seconds, 0.0))

    def audited(self, action: str, detail: Mapping[str, object]) -> None:
        """An audit entry that is also a count: redactions, purges, enforcement actions."""
        if action == AuditAction.RETENTION_REDACTED:
            events = detail.get("events")
            if isinstance(events, int) and events > 0:
                self.events_redacted.inc(events)
        elif action == AuditAction.RETENTION_PURGED:
            self.rooms_purged.inc()
        elif action in ENFORCEMENT_RULES:
            self.enforcement.labels(ENFORCEMENT_RULES[action]).inc()

    # --- gauges, at scrape time --------------------------------------------------------------------

    def set_snapshot(self, snapshot: Snapshot) -> None:
        for gauge, counts, labels in (
            (self.teams, snapshot.teams, ("plan", "team_state")),
            (self.members, snapshot.members, ("role", "membership")),
            (self.rooms, snapshot.rooms, ("room_kind", "archived")),
            (self.job_queue, snapshot.jobs, ("job_kind", "job_state")),
        ):
            gauge.clear()  # a value that no longer exists must not stay at its last count
            for key, count in counts.items():
                gauge.labels(*(self._label(name, value) for name, value in zip(labels, key))).inc(count)

    def homeserver_reaches(self, reached: bool | None) -> None:
        """The answer of the last ping asked of the homeserver (``jobs/reach.py``)."""
        self.reaches.set(-1 if reached is None else int(reached))

    def count_in_flight(self, count: Callable[[], int]) -> None:
        """Read the tasks of event handling in flight at each scrape, from their owner (``jobs/inbox.py``)."""
        self.events_in_flight.set_function(count)

    def render(self) -> bytes:
        """The text exposition format Prometheus scrapes."""
        return generate_latest(self.registry)
