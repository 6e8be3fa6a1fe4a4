"""The usage report's k-anonymity floor and the metrics' fixed label sets (promise P15, docs/promises.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from clutto_bridge.config import EXAMPLE_CONFIG, ConfigError, validate
from clutto_bridge.metrics import Metrics, Snapshot
from clutto_bridge.policy.analytics import iso_week, size_bucket, usage_report
from clutto_bridge.web.outputs import UsageReport
from tests.unit.helpers import with_value

MONDAY = int(datetime(2026, 11, 23, 9, tzinfo=UTC).timestamp() * 1000)
WEEK = 7 * 86400 * 1000


@dataclass
class Facts:
    created_at: int
    plan: str
    members: int


@pytest.mark.parametrize(
    "members, bucket", [(0, "0"), (1, "1"), (2, "2-5"), (5, "2-5"), (6, "6-20"), (100, "21-100"), (101, "101+")]
)
def test_team_sizes_fall_in_buckets(members: int, bucket: str) -> None:
    assert size_bucket(members) == bucket


def test_weeks_are_iso_weeks_in_utc() -> None:
    assert iso_week(MONDAY) == "2026-W48"
    assert iso_week(MONDAY - 9 * 3600 * 1000) == "2026-W48"  # midnight UTC starts the week
    assert iso_week(MONDAY - 9 * 3600 * 1000 - 1) == "2026-W47"


def test_a_cell_of_three_teams_is_suppressed_at_k5_and_shown_at_k3() -> None:
    teams = [Facts(MONDAY, "trial", 1) for _ in range(3)]
    hidden = usage_report(teams, 5)
    assert hidden.cells == [] and hidden.suppressed == 1
    shown = usage_report(teams, 3)
    assert shown.suppressed == 0
    assert [(c.week, c.plan, c.size, c.teams, c.members) for c in shown.cells] == [("2026-W48", "trial", "1", 3, 3)]


def test_a_cell_needs_k_members_as_well_as_k_teams() -> None:
    # Five paid teams of two (10 members) pass; one team of 30 people is one team: suppressed.
    teams = [Facts(MONDAY, "paid", 2) for _ in range(5)] + [Facts(MONDAY, "paid", 30)]
    report = usage_report(teams, 5)
    assert [(c.size, c.teams, c.members) for c in report.cells] == [("2-5", 5, 10)]
    assert report.suppressed == 1


def test_cells_are_per_week_and_plan_and_the_report_has_no_totals() -> None:
    teams = [Facts(MONDAY, "trial", 1)] * 5 + [Facts(MONDAY + WEEK, "trial", 1)] * 5 + [Facts(MONDAY, "paid", 1)] * 2
    report = UsageReport.of(usage_report(teams, 5)).model_dump()  # as the API sends it
    assert [(c["week"], c["plan"]) for c in report["cells"]] == [("2026-W48", "trial"), ("2026-W49", "trial")]
    assert report["suppressed_cells"] == 1
    assert set(report) == {"k", "suppressed_cells", "cells"}


def test_a_label_value_outside_its_fixed_set_is_counted_as_other() -> None:
    metrics = Metrics()
    metrics.allow("command", ["team info"])
    metrics.command_run("team info", "ok")
    metrics.command_run("@alice:example.com", "ok")
    metrics.api_request("GET", "/_clutto/v1/teams/!room:example.com", 200)
    metrics.set_snapshot(Snapshot(teams={("trial", "active"): 2, ("Acme Corp", "active"): 1}))
    text = metrics.render().decode()
    assert 'clutto_commands_total{command="team info",outcome="ok"} 1.0' in text
    assert 'clutto_commands_total{command="other",outcome="ok"} 1.0' in text
    assert 'clutto_api_requests_total{method="GET",route="other",status="200"} 1.0' in text
    assert 'clutto_teams{plan="other",state="active"} 1.0' in text
    assert "alice" not in text and "!room" not in text and "Acme" not in text


def test_audited_actions_count_redactions_purges_and_enforcement_only() -> None:
    metrics = Metrics()
    metrics.audited("retention_redacted", {"events": 7, "cutoff": 1})
    metrics.audited("retention_purged", {"cuts": 2})
    metrics.audited("integration_removed", {})
    metrics.audited("member_invited", {"role": "member"})
    text = metrics.render().decode()
    assert "clutto_retention_events_redacted_total 7.0" in text
    assert "clutto_retention_rooms_purged_total 1.0" in text
    assert 'clutto_enforcement_actions_total{rule="integration_bot"} 1.0' in text


def test_each_bridge_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.audited("retention_purged", {})
    assert "clutto_retention_rooms_purged_total 1.0" in first.render().decode()
    assert "clutto_retention_rooms_purged_total 0.0" in second.render().decode()


def test_gauges_forget_what_no_longer_exists() -> None:
    metrics = Metrics()
    metrics.set_snapshot(Snapshot(rooms={("group", "false"): 3}))
    metrics.set_snapshot(Snapshot(rooms={("direct", "false"): 1}))
    text = metrics.render().decode()
    assert 'kind="group"' not in text and 'clutto_team_rooms{archived="false",kind="direct"} 1.0' in text


@pytest.mark.parametrize("value", [1, 0, "five"])
def test_a_floor_below_two_is_refused_naming_analytics_k(value) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(with_value("analytics.k", value))
    assert caught.value.key == "analytics.k"


def test_run_refuses_an_ungenerated_metrics_secret_only_while_metrics_are_served(tmp_path, monkeypatch) -> None:
    from clutto_bridge import cli

    config = tmp_path / "config.yaml"
    text = EXAMPLE_CONFIG.read_text()
    for token in ("as_token", "hs_token", "shared_secret"):
        text = text.replace(f"{token}: generate", f"{token}: {token[0] * 32}")  # each secret its own
    config.write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "check_environment", lambda settings: None)
    monkeypatch.setattr(cli, "setup_logging", lambda level, file: None)
    assert cli.main(["-c", str(config)]) == 2
    served = []
    monkeypatch.setattr(cli, "serve", lambda settings, debug=False, worker=False: served.append(settings) or _done())
    config.write_text(text.replace("metrics_enabled: true", "metrics_enabled: false"))
    assert cli.main(["-c", str(config)]) == 0 and served


async def _done() -> int:
    return 0
