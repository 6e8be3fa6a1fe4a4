"""The documentation: generated pages current, the site building with --strict, a short README,
and the audit actions as one enum whose stored values never change."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clutto_bridge import docs_pages
from clutto_bridge.clock import SystemClock
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.metrics import Metrics
from clutto_bridge.policy.audit_actions import KINDS, AuditAction
from clutto_bridge.promises import page as promises_page

ROOT = Path(__file__).resolve().parents[2]

# The values stored in audit_log.action (and hashed into the chain, and sent in the audit webhook)
# before the enum existed. Renaming one would make old rows and new rows of the same action differ.
STORED_ACTIONS = {
    "contacts_matched",
    "direct_chat_created",
    "email_disabled",
    "email_enabled",
    "email_posted",
    "export_created",
    "export_downloaded",
    "export_requested",
    "export_setting",
    "hold_lifted",
    "hold_placed",
    "integration_allowed",
    "integration_denied",
    "integration_removed",
    "invite_declined",
    "member_data_read",
    "member_invited",
    "member_removed",
    "own_data_exported",
    "ownership_transferred",
    "plan_set",
    "power_levels_reverted",
    "profile_reset",
    "purge_blocked_by_hold",
    "retention_purged",
    "retention_redact_set",
    "retention_redacted",
    "retention_set",
    "retention_sweep",
    "role_changed",
    "room_added",
    "room_archived",
    "room_created",
    "rooms_encrypted",
    "team_avatar_set",
    "team_consent_read",
    "team_delete_started",
    "team_deleted",
    "team_purged",
    "team_renamed",
    "team_topic_set",
    "trial_warning",
    "widget_removed",
    "scim_token_created",
    "scim_token_revoked",
    "scim_user_provisioned",
    "scim_user_updated",
    "scim_user_deleted",
    "scim_group_linked",
    "scim_group_members_changed",
}


# --- generated pages ------------------------------------------------------------------------------


def test_generated_pages_are_current() -> None:
    assert docs_pages.stale() == [], f"regenerate them: {docs_pages.COMMAND}"


def test_a_stale_page_is_found_and_regenerated(tmp_path: Path) -> None:
    for name in docs_pages.PAGES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "docs/reference/commands.md").write_text("# Bot commands\n\n| `help` | anyone | old |\n")
    assert docs_pages.stale(tmp_path) == ["docs/reference/commands.md"]
    assert docs_pages.generate(tmp_path) == ["docs/reference/commands.md"]
    assert docs_pages.stale(tmp_path) == []


def test_the_promises_page_is_one_of_them() -> None:
    assert docs_pages.PAGES["docs/promises.md"] is promises_page.markdown


def test_the_commands_page_lists_every_registered_command() -> None:
    from clutto_bridge.commands import registry

    text = docs_pages.commands_page()
    for command in registry.commands.values():
        assert f"| `{command.name}" in text
    assert "| `team delete [NAME]` | owner |" in text
    assert "| `team rename NAME` | owner, admins |" in text
    assert "| `mydata` | anyone, in the chat with the bot |" in text


def test_the_config_page_documents_every_key_of_the_example() -> None:
    keys = {key: comment for key, comment, _ in docs_pages.config_keys(promises_page.EXAMPLE_CONFIG.read_text())}
    assert set(promises_page.defaults()) <= set(keys)
    assert not [key for key in keys if key.startswith(("policy.cookies.", "policy.trial.warnings."))]  # list items
    assert keys["appservice.hs_token"] == keys["appservice.as_token"]  # one comment above both
    assert "Tokens shared with the homeserver" in keys["appservice.hs_token"]
    assert '| `appservice.tls.cert` | `""` |' in docs_pages.config_page()


def test_the_api_page_lists_every_operation_of_the_served_document() -> None:
    document = docs_pages.openapi_document(docs_pages.PREFIX, docs_pages.all_routes())
    text = docs_pages.api_page(document)
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"## {method.upper()} `{path}`" in text
    for schema in document["components"]["schemas"]:
        assert f"### `{schema}`" in text


def test_the_audit_page_lists_every_action_under_its_kind() -> None:
    text = docs_pages.audit_page()
    for action in AuditAction:
        assert f"| `{action.value}` |" in text
    sections = text.split("\n## ")[1:]
    for action in AuditAction:
        [section] = [s for s in sections if s.startswith(KINDS[action.kind])]
        assert f"`{action.value}`" in section


# --- the audit actions ----------------------------------------------------------------------------


def test_audit_actions_keep_the_values_the_log_stores() -> None:
    assert {action.value for action in AuditAction} == STORED_ACTIONS
    assert all(action.kind in KINDS and action.when.endswith(".") for action in AuditAction)
    assert AuditAction("team_purged") is AuditAction.TEAM_PURGED
    assert f"{AuditAction.ROOM_ADDED}" == "room_added"


async def test_the_audit_log_refuses_an_action_that_is_not_in_the_enum() -> None:
    log = AuditLog(store=None, clock=SystemClock())  # refused before the store is asked
    with pytest.raises(ValueError, match="made_up"):
        await log.record(None, None, "made_up", None)  # type: ignore[arg-type]


# --- the site and the README ----------------------------------------------------------------------


def test_the_site_builds_with_strict(tmp_path: Path) -> None:
    """Every page in the nav, every link and anchor resolving, the changelog included."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "audit-actions" / "index.html").is_file()


def test_the_readme_is_short_with_the_two_commands_and_links_that_resolve() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert "python3 scripts/dev.py demo" in text and "python3 scripts/dev.py test" in text
    assert "python3 scripts/dev.py test" in (ROOT / ".ci" / "run").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert "docs/promises.md" in links
    # bench/README.md holds the benchmark figures; it is written beside the scripts by their own work.
    missing = [link for link in links if not (ROOT / link).exists() and link != "bench/README.md"]
    assert missing == []
    assert "DESIGN" not in text


def test_the_changelog_exists_and_the_site_includes_it() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog\n")
    assert '--8<-- "CHANGELOG.md' in (ROOT / "docs" / "development" / "changelog.md").read_text()


def test_the_cli_checks_and_generates(capsys: pytest.CaptureFixture[str]) -> None:
    from clutto_bridge.cli import main

    assert main(["docs", "check"]) == 0
    assert main(["docs", "generate"]) == 0
    assert capsys.readouterr().out == ""  # everything was current: nothing written


def test_every_metric_the_bridge_serves_is_in_the_metrics_page() -> None:
    """docs/operations/metrics.md lists each metric under the name a scrape shows (counters
    with ``_total``), and nothing the bridge does not serve."""
    served = {f.name + ("_total" if f.type == "counter" else "") for f in Metrics().registry.collect()}
    page = (ROOT / "docs" / "operations" / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(clutto_[a-z_]+)`", page, flags=re.MULTILINE))
    assert documented == served
