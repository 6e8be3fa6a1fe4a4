"""The homeserver's side of enforcement before the write: the module entry the bridge
recommends and the check ``doctor`` runs on homeserver.yaml."""

from __future__ import annotations

from pathlib import Path

from clutto_bridge.config import ConfigFile
from clutto_bridge.web.antispam import CALLBACKS, MODULE, PATH, antispam_findings, module_config
from tests.conftest import config_with_tokens

SECRET = "x" * 32  # what config_with_tokens fills in


def settings(tmp_path: Path, **replace: str):
    path = tmp_path / "config.yaml"
    config_with_tokens(path, **replace)
    file = ConfigFile(path)
    file.load()
    return file.settings()


def homeserver(**config) -> dict:
    entry = module_config("http://localhost:29330", SECRET)
    entry["config"].update(config)
    return {"server_name": "example.com", "modules": [{"module": "some.other.Module"}, entry]}


def test_the_recommended_entry_passes(tmp_path: Path) -> None:
    assert antispam_findings(homeserver(), settings(tmp_path)) == []
    entry = module_config("http://localhost:29330/", SECRET)["config"]
    assert entry["base_url"] == "http://localhost:29330" + PATH
    assert entry["enabled_callbacks"] == list(CALLBACKS) and all(entry["fail_open"].values())


def test_a_homeserver_without_the_module_is_an_error_naming_what_to_add(tmp_path: Path) -> None:
    [finding] = antispam_findings({"modules": []}, settings(tmp_path))
    assert finding.severity == "error" and MODULE in finding.message and "synapse-http-antispam==" in finding.message
    assert SECRET not in finding.message
    assert len(antispam_findings({}, settings(tmp_path))) == 1


def test_wrong_url_secret_and_callbacks_are_each_named(tmp_path: Path) -> None:
    findings = antispam_findings(
        homeserver(base_url="http://elsewhere:1", authorization="wrong", enabled_callbacks=["user_may_invite"]),
        settings(tmp_path),
    )
    messages = " ".join(f.message for f in findings)
    assert [f.severity for f in findings] == ["error", "error", "error"]
    assert "base_url" in messages and "authorization" in messages and "check_event_for_spam" in messages
    assert SECRET not in messages


def test_fail_closed_joins_are_a_warning_with_their_consequence(tmp_path: Path) -> None:
    findings = antispam_findings(homeserver(fail_open={"user_may_join_room": False}), settings(tmp_path))
    [warning] = findings
    assert warning.severity == "warning" and "user_may_join_room" in warning.message and "any room" in warning.message


def test_nothing_to_check_while_the_bridge_serves_no_endpoints(tmp_path: Path) -> None:
    off = settings(tmp_path, **{"antispam:\n    # Serve the endpoints the module calls, under /_clutto/antispam on the "
                                "appservice port.\n    enabled: true": "antispam:\n    enabled: false"})
    assert antispam_findings({}, off) == []
