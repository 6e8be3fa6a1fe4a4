"""doctor's checks: pure functions over the parsed homeserver.yaml and log config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clutto_bridge.doctor import checks as c
from clutto_bridge.doctor.checks import Change, Facts, Requirements, Status, run_checks
from clutto_bridge.doctor.files import YamlFile

DAY = 86400
REQ = Requirements(
    ip_mode="truncated",
    collection_retention_s=30 * DAY,
    shortest_lifetime_s=DAY,
    longest_lifetime_s=365 * DAY,
    as_token="as-secret",
    registration_file="/etc/clutto/registration.yaml",
)
LISTENER = {
    "type": "http",
    "port": 8008,
    "bind_addresses": ["127.0.0.1"],
    "tls": False,
    "resources": [{"names": ["client"], "compress": False}],
}
QUIET_LOGS = {"version": 1, "loggers": {"synapse.access": {"level": "WARNING"}}, "root": {"level": "INFO"}}
COMPLIANT = {
    "user_ips_max_age": "30d",
    "redaction_retention_period": "1d",
    "media_retention": {"remote_media_lifetime": "90d"},
    "url_preview_enabled": False,
    "report_stats": False,
    "include_profile_data_on_invite": False,
    "limit_profile_requests_to_users_who_share_rooms": True,
    "require_auth_for_profile_requests": True,
    "app_service_config_files": ["registration.yaml"],
    "listeners": [{**LISTENER, "resources": [{"names": ["client", "openid"]}]}],
    "experimental_features": {"msc2409_to_device_messages_enabled": True, "msc3202_transaction_extensions": True},
}
OUR_REGISTRATION = {
    "as_token": "as-secret",
    "receive_ephemeral": True,
    "org.matrix.msc3202": True,
    "io.element.msc4190": True,
}


def facts(
    homeserver: dict | None = None, log_config: dict | None = QUIET_LOGS, bot_admin: bool | None = True, **changes
) -> Facts:
    data = {**COMPLIANT, **(homeserver or {}), **changes}
    return Facts(data, log_config, registrations={"registration.yaml": OUR_REGISTRATION}, bot_admin=bot_admin)


def by_check(f: Facts, req: Requirements = REQ) -> dict[str, c.Result]:
    return {r.check: r for r in run_checks(f, req)}


def test_a_compliant_homeserver_passes_every_check() -> None:
    results = run_checks(facts(), REQ)
    assert [r.check for r in results if r.status is not Status.PASS] == []
    assert not c.failed(results)


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("30d", Status.PASS),
        ("29d", Status.PASS),
        ("31d", Status.FAIL),
        ("4w", Status.PASS),
        ("5w", Status.FAIL),
        (2592000000, Status.PASS),
        (2592000001, Status.FAIL),
        (None, Status.FAIL),
        ("soon", Status.FAIL),
    ],
)
def test_user_ips_max_age_is_at_most_the_collection_retention(value, status) -> None:
    result = c.user_ips_max_age(facts(user_ips_max_age=value), REQ)
    assert result.status is status
    assert result.fixes == (
        () if status is Status.PASS else (Change(c.HOMESERVER, ("user_ips_max_age",), "30d", why=result.why),)
    )


def test_synapse_defaults_count_when_a_key_is_missing() -> None:
    data = {
        k: v
        for k, v in COMPLIANT.items()
        if k not in ("user_ips_max_age", "redaction_retention_period", "include_profile_data_on_invite")
    }
    got = by_check(Facts(data, QUIET_LOGS, registrations={"registration.yaml": OUR_REGISTRATION}, bot_admin=True))
    assert got["user_ips_max_age"].status is Status.PASS  # 28d <= 30d
    assert got["user_ips_max_age"].found == "28d (Synapse's default)"
    assert got["redaction_retention_period"].status is Status.FAIL  # 7d > 1d
    assert got["include_profile_data_on_invite"].status is Status.FAIL  # Synapse's default is true


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("url_preview_enabled", True),
        ("report_stats", True),
        ("include_profile_data_on_invite", True),
        ("limit_profile_requests_to_users_who_share_rooms", False),
        ("require_auth_for_profile_requests", False),
    ],
)
def test_flags_fail_the_wrong_way_and_fix_to_the_right_one(key, bad) -> None:
    result = by_check(facts(**{key: bad}))[key]
    assert result.status is Status.FAIL
    assert [(f.path, f.value) for f in result.fixes] == [((key,), not bad)]


@pytest.mark.parametrize(
    ("log_config", "ip", "status"),
    [
        (QUIET_LOGS, "truncated", Status.PASS),
        ({"version": 1, "root": {"level": "INFO"}}, "hashed", Status.FAIL),
        ({"version": 1, "root": {"level": "WARNING"}}, "none", Status.PASS),
        (
            {"version": 1, "loggers": {"synapse": {"level": "ERROR"}}, "root": {"level": "INFO"}},
            "truncated",
            Status.PASS,
        ),
        (
            {
                "version": 1,
                "loggers": {"synapse.access": {"level": "WARNING"}, "synapse.access.http.8008": {"level": "INFO"}},
            },
            "truncated",
            Status.FAIL,
        ),
        ({"version": 1, "root": {"level": "INFO"}}, "full", Status.PASS),  # the policy allows full addresses
        (None, "truncated", Status.FAIL),  # no log config: Synapse logs requests at INFO
    ],
)
def test_the_request_log_writes_no_full_address_unless_the_policy_allows(log_config, ip, status) -> None:
    req = Requirements(**{**REQ.__dict__, "ip_mode": ip})
    result = c.access_log(facts(log_config=log_config), req)
    assert result.status is status
    if status is Status.FAIL and log_config is not None:
        assert all(f.file == c.LOG_CONFIG and f.value == "WARNING" for f in result.fixes) and result.fixes


def test_media_retention_must_bound_remote_media() -> None:
    assert c.media_retention(facts(media_retention=None), REQ).status is Status.FAIL
    assert c.media_retention(facts(media_retention={"remote_media_lifetime": "2y"}), REQ).status is Status.FAIL
    result = c.media_retention(facts(media_retention={"local_media_lifetime": "90d"}), REQ)
    assert result.fixes[0].path == ("media_retention", "remote_media_lifetime") and result.fixes[0].value == "365d"


def test_the_registration_is_found_by_its_token() -> None:
    other = Facts(
        COMPLIANT, QUIET_LOGS, registrations={"registration.yaml": {"as_token": "someone-else"}}, bot_admin=True
    )
    result = c.registration_loaded(other, REQ)
    assert result.status is Status.FAIL
    assert result.fixes[0].append and result.fixes[0].value == REQ.registration_file
    no_file = Requirements(**{**REQ.__dict__, "registration_file": None})
    assert c.registration_loaded(other, no_file).fixes == ()


def test_the_e2ee_transaction_features_are_fixed_in_experimental_features() -> None:
    features = {"msc3202_transaction_extensions": True, "some_other_feature": True}
    result = c.e2ee_transactions(facts(experimental_features=features), REQ)
    assert result.status is Status.FAIL and result.found == "off: msc2409_to_device_messages_enabled"
    assert result.fixes == (
        Change(c.HOMESERVER, ("experimental_features", "msc2409_to_device_messages_enabled"), True, why=result.why),
    )
    absent = c.e2ee_transactions(Facts({k: v for k, v in COMPLIANT.items() if k != "experimental_features"}), REQ)
    assert absent.status is Status.FAIL and [f.path[-1] for f in absent.fixes] == list(c.E2EE_EXPERIMENTAL_FEATURES)


def test_the_e2ee_registration_flags_are_checked_in_the_loaded_registration() -> None:
    old = Facts(COMPLIANT, QUIET_LOGS, registrations={"registration.yaml": {"as_token": "as-secret"}}, bot_admin=True)
    result = c.e2ee_registration(old, REQ)
    assert result.status is Status.FAIL and "generate-registration" in result.why and result.fixes == ()
    assert result.found == "missing: receive_ephemeral, org.matrix.msc3202, io.element.msc4190"
    none_loaded = Facts(
        COMPLIANT, QUIET_LOGS, registrations={"registration.yaml": {"as_token": "other"}}, bot_admin=True
    )
    assert c.e2ee_registration(none_loaded, REQ).status is Status.UNCHECKED


def test_generate_registration_writes_the_flags_doctor_checks() -> None:
    from clutto_bridge.registration import E2EE_FLAGS

    assert E2EE_FLAGS == dict.fromkeys(c.E2EE_REGISTRATION_FLAGS, True)


def test_the_bot_admin_check_says_not_checked_when_the_homeserver_cannot_be_asked() -> None:
    assert c.bot_is_admin(facts(bot_admin=None), REQ).status is Status.UNCHECKED
    assert c.bot_is_admin(facts(bot_admin=False), REQ).status is Status.FAIL
    assert not c.failed([c.bot_is_admin(facts(bot_admin=None), REQ)])


def test_the_openid_resource_is_added_to_the_client_listener() -> None:
    result = c.openid_listener(facts(listeners=[LISTENER]), REQ)
    assert result.status is Status.FAIL
    assert result.fixes[0].path == ("listeners", 0, "resources", 0, "names") and result.fixes[0].append
    federation = {**LISTENER, "resources": [{"names": ["client", "federation"]}]}
    assert c.openid_listener(facts(listeners=[federation]), REQ).status is Status.PASS


@pytest.mark.parametrize(
    ("listener", "status"),
    [
        (LISTENER, Status.PASS),
        ({**LISTENER, "bind_addresses": ["::1", "127.0.0.1"]}, Status.PASS),
        ({**LISTENER, "bind_addresses": ["0.0.0.0"]}, Status.WARN),
        ({k: v for k, v in LISTENER.items() if k != "bind_addresses"}, Status.WARN),  # Synapse binds to all by default
        ({**LISTENER, "bind_addresses": ["0.0.0.0"], "tls": True}, Status.PASS),
    ],
)
def test_plain_http_on_a_reachable_address_is_a_warning(listener, status) -> None:
    result = c.client_listener_tls(facts(listeners=[{**listener, "resources": [{"names": ["client", "openid"]}]}]), REQ)
    assert result.status is status
    assert not c.failed([result])


@pytest.mark.parametrize(
    ("value", "ms"), [("1d", 86400000), ("2y", 2 * 365 * 86400000), (500, 500), ("500", 500), ("x", None), (True, None)]
)
def test_synapse_durations(value, ms) -> None:
    assert c.synapse_ms(value) == ms


def test_fixes_are_written_in_one_unit_synapse_reads() -> None:
    assert c.synapse_duration(30 * DAY) == "30d"
    assert c.synapse_duration(DAY + 3600) == "25h"
    assert c.synapse_ms(c.synapse_duration(DAY + 61)) == (DAY + 61) * 1000


def test_a_fix_keeps_comments_and_touches_only_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(
        "# top comment\nserver_name: example.com  # ours\nreport_stats: true  # asked at setup\n"
        "listeners:\n  - port: 8008\n    type: http\n    resources:\n      - names: [client]\n"
    )
    file = YamlFile.load(path)
    file.apply(Change(c.HOMESERVER, ("report_stats",), False))
    file.apply(Change(c.HOMESERVER, ("listeners", 0, "resources", 0, "names"), "openid", append=True))
    file.apply(Change(c.HOMESERVER, ("media_retention", "remote_media_lifetime"), "90d", why="cached media"))
    backup = file.save_with_backup(now=0)
    text = path.read_text()
    assert backup.read_text().startswith("# top comment\nserver_name: example.com  # ours\nreport_stats: true")
    assert "# top comment" in text and "server_name: example.com  # ours" in text
    assert re.search(r"report_stats: false +# asked at setup", text)
    assert "names: [client, openid]" in text
    assert "# Set by clutto-bridge doctor --fix: cached media.\nmedia_retention:\n  remote_media_lifetime: 90d" in text


def test_a_fix_that_changes_nothing_writes_nothing_and_leaves_no_backup(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text("# ours\nreport_stats: false  # asked at setup\n")
    file = YamlFile.load(path)
    file.apply(Change(c.HOMESERVER, ("report_stats",), False))
    assert file.save_with_backup(now=0) is None
    assert path.read_text() == "# ours\nreport_stats: false  # asked at setup\n"
    assert list(tmp_path.iterdir()) == [path]


def test_the_cli_names_a_file_it_cannot_read_and_exits_with_2(tmp_path: Path, capsys) -> None:
    from clutto_bridge import cli
    from tests.conftest import config_with_tokens

    config = tmp_path / "config.yaml"
    config_with_tokens(config)
    assert cli.main(["doctor", "-c", str(config), "--homeserver-config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_cli_exits_with_1_when_a_check_fails_and_0_after_fix(tmp_path: Path, capsys) -> None:
    from clutto_bridge import cli
    from tests.conftest import config_with_tokens

    config = tmp_path / "config.yaml"
    config_with_tokens(config, **{"address: http://localhost:8008": "address: http://127.0.0.1:9"})
    registration = tmp_path / "registration.yaml"
    assert cli.main(["generate-registration", "-c", str(config), "-r", str(registration)]) == 0
    homeserver = tmp_path / "homeserver.yaml"
    homeserver.write_text(
        "server_name: example.com\nlog_config: log.yaml\nreport_stats: true\n"
        "listeners:\n  - port: 8008\n    type: http\n    bind_addresses: ['127.0.0.1']\n"
        "    resources:\n      - names: [client]\n"
    )
    (tmp_path / "log.yaml").write_text("version: 1\nroot:\n    level: INFO\n")
    args = ["doctor", "-c", str(config), "--homeserver-config", str(homeserver)]
    assert cli.main(args) == 1
    assert cli.main([*args, "--fix", "--registration", str(registration)]) == 0
    out = capsys.readouterr().out
    assert "loggers.synapse.access.level = WARNING" in out and "listeners.0.resources.0.names += 'openid'" in out
    assert cli.main(args) == 0


@pytest.mark.parametrize(
    "findings, status",
    [
        (None, Status.PASS),  # antispam.enabled off
        ([("absent", "modules: has no ...")], Status.PASS),  # Synapse does not ask the bridge
        ([], Status.UNCHECKED),  # Synapse waits on the bridge: the operator's supervisor decides
        ([("warning", "reads its secret from a file")], Status.UNCHECKED),
    ],
)
def test_doctor_says_what_restarts_a_hung_bridge_when_synapse_waits_on_it(findings, status) -> None:
    req = REQ if findings is None else Requirements(**{**REQ.__dict__, "module_findings": lambda hs: findings})
    result = c.hung_bridge(facts(), req)
    assert result.status is status
    assert "WatchdogSec" in result.required and "HEALTHCHECK" in result.required and "60 s" in result.why
