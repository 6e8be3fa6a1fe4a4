"""The homeserver's side of enforcement before the write: the module entry the bridge
recommends and the check ``doctor`` runs on homeserver.yaml."""

from __future__ import annotations

from pathlib import Path

from clutto_bridge.config import EXAMPLE_CONFIG, ConfigFile
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
    assert finding.severity == "absent" and MODULE in finding.message and "synapse-http-antispam==" in finding.message
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
    off = settings(
        tmp_path,
        **{
            "antispam:\n    # Serve the endpoints the module calls, under /_clutto/antispam on the "
            "appservice port.\n    enabled: true": "antispam:\n    enabled: false"
        },
    )
    assert antispam_findings({}, off) == []


def test_generate_registration_fills_an_antispam_secret_of_its_own(tmp_path: Path) -> None:
    from clutto_bridge.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(EXAMPLE_CONFIG.read_text())
    assert main(["generate-registration", "-c", str(config), "-r", str(tmp_path / "registration.yaml")]) == 0
    file = ConfigFile(config)
    file.load()
    secret = file["antispam.shared_secret"]
    assert secret != "generate" and len(secret) >= 32
    assert secret not in (
        file["provisioning.shared_secret"],
        file["analytics.metrics_secret"],
        file["appservice.as_token"],
    )


def test_run_refuses_an_ungenerated_antispam_secret_only_while_the_endpoints_are_served(
    tmp_path, monkeypatch, capsys
) -> None:
    from clutto_bridge import cli

    config = tmp_path / "config.yaml"
    text = EXAMPLE_CONFIG.read_text()
    for token in (
        "as_token",
        "hs_token",
        "provisioning:\n    # Serve the provisioning API.\n    enabled: true\n"
        '    # Bearer token operators use. "generate" means generate-registration creates one.\n'
        "    shared_secret",
        "metrics_secret",
    ):
        assert f"{token}: generate" in text, token
        text = text.replace(f"{token}: generate", f"{token}: {('h' if token == 'hs_token' else 'x') * 32}")
    config.write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "check_environment", lambda settings: None)
    monkeypatch.setattr(cli, "setup_logging", lambda level, file: None)
    assert cli.main(["-c", str(config)]) == 2
    assert "antispam.shared_secret" in capsys.readouterr().err
    served = []
    monkeypatch.setattr(cli, "serve", lambda settings, debug=False, worker=False: served.append(settings) or _done())
    off = text.replace("on the appservice port.\n    enabled: true", "on the appservice port.\n    enabled: false")
    assert off != text
    config.write_text(off)
    assert cli.main(["-c", str(config)]) == 0 and served


async def _done() -> int:
    return 0


def test_doctor_warns_when_the_module_is_absent_and_fails_when_it_points_elsewhere(tmp_path: Path) -> None:
    from clutto_bridge.doctor import requirements
    from clutto_bridge.doctor.checks import Facts, Status, enforcement_module

    req = requirements(settings(tmp_path))
    assert enforcement_module(Facts(homeserver(), {}), req).status is Status.PASS
    absent = enforcement_module(Facts({"server_name": "example.com"}, {}), req)
    assert absent.status is Status.WARN and MODULE in absent.found
    elsewhere = enforcement_module(Facts(homeserver(base_url="http://other:1/_clutto/antispam"), {}), req)
    assert elsewhere.status is Status.FAIL and "base_url" in elsewhere.found
    off = requirements(
        settings(
            tmp_path,
            **{"enabled: true\n    # Bearer token the module": "enabled: false\n    # Bearer token the module"},
        )
    )
    assert enforcement_module(Facts({}, {}), off).status is Status.PASS


def test_doctor_warns_when_the_bridge_itself_speaks_plain_http_on_a_reachable_address(tmp_path: Path) -> None:
    from clutto_bridge.doctor import requirements
    from clutto_bridge.doctor.checks import Facts, Status, bridge_listener_tls

    assert bridge_listener_tls(Facts({}), requirements(settings(tmp_path))).status is Status.PASS
    exposed = requirements(settings(tmp_path, **{"hostname: 127.0.0.1": "hostname: 0.0.0.0"}))
    result = bridge_listener_tls(Facts({}), exposed)
    assert result.status is Status.WARN and "0.0.0.0" in result.found
