"""The privacy promises as a checked map: the registry against the code, the tests, the page and
a configuration."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clutto_bridge.config import config_keys, validate
from clutto_bridge.promises import BY_ID, PROMISES, Built, State, check, page, weakened
from clutto_bridge.promises.compliance import report_lines
from tests.unit.helpers import example

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_holds_p1_to_p16_once_each() -> None:
    assert [p.id for p in PROMISES] == [f"P{n}" for n in range(1, 17)]


def test_every_setting_and_weakening_key_exists_in_the_config() -> None:
    keys = set(config_keys())
    for p in PROMISES:
        assert set(p.settings) <= keys, p.id
        assert {w.key for w in p.weakened_by} <= set(p.settings), p.id


def test_every_module_named_as_keeping_a_promise_exists() -> None:
    for p in PROMISES:
        for module in p.enforced_in:
            importlib.import_module(module)


def test_a_promise_not_built_names_the_issue_that_builds_it() -> None:
    for p in PROMISES:
        if p.built is not Built.YES:
            assert p.pending, f"{p.id} is {p.built.value} but says nothing of what is missing"
        if p.built is Built.NO:
            assert not p.enforced_in and not p.settings, p.id
        assert all(x.issue > 0 for x in p.pending)
    assert BY_ID["P15"].built is Built.YES  # metrics and the usage report (issue 16, part 2)
    assert BY_ID["P16"].built is Built.YES  # the email integration (issue 16, part 1)


def test_every_built_promise_has_a_marked_integration_test() -> None:
    proofs = page.marked_tests()
    unproved = [p.id for p in PROMISES if p.built is not Built.NO and not proofs.get(p.id)]
    assert unproved == [], f"mark an integration test with @pytest.mark.promise(...) for {unproved}"


def test_markers_name_only_known_promises(tmp_path: Path) -> None:
    assert set(page.marked_tests()) <= set(BY_ID)
    folder = tmp_path / "tests" / "integration"
    folder.mkdir(parents=True)
    (folder / "test_x.py").write_text(
        'import pytest\n\n@pytest.mark.promise("P2", "P99")\nasync def test_a():\n    pass\n\n'
        '@pytest.mark.parametrize("x", [1])\n@pytest.mark.promise("P7")\ndef test_b(x):\n    pass\n'
    )
    assert page.marked_tests(folder) == {
        "P2": ["tests/integration/test_x.py::test_a"],
        "P99": ["tests/integration/test_x.py::test_a"],
        "P7": ["tests/integration/test_x.py::test_b"],
    }


def test_the_promise_marker_is_registered() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^\s*"promise\(\*ids\): ', text, re.M)


def test_docs_promises_md_is_current() -> None:
    assert page.PAGE.read_text() == page.markdown(), f"regenerate it: {page.COMMAND}"


def test_the_page_names_settings_with_defaults_tests_and_choices() -> None:
    text = page.markdown()
    assert "`policy.consent.mode` (`block`)" in text
    assert "`policy.consent.mode: remind`:" in text and "`policy.profile.enforce: off`:" in text
    assert "tests/integration/test_retention.py::test_sweep_removes_old_events_and_keeps_window" in text
    assert "## P12. Data is encrypted on the database level, end to end (built)" in text
    assert "`security.keyset` (`clutto-keyset.json`)" in text
    assert "## P16. Email: only header information (built)" in text
    assert "(issue 1" not in text  # every promise is built; none waits for an issue
    assert "privacy portal's privacy page (`/portal/privacy`)" in text


def test_readme_links_the_generated_page_and_no_hand_written_copy_remains() -> None:
    assert "(docs/promises.md)" in (ROOT / "README.md").read_text()
    assert not (ROOT / "docs" / "privacy-promises.md").exists()


# --- the compliance report ----------------------------------------------------------------------


def settings(**changes):
    """The example config with ``policy__consent__mode="block"`` style changes."""
    data = example()
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    return validate(data)


def states(verdicts) -> dict[str, str]:
    return {v.promise.id: v.state.value for v in verdicts}


def test_the_example_config_keeps_every_promise() -> None:
    verdicts = check(settings())
    assert weakened(verdicts) == []
    got = states(verdicts)
    assert set(got.values()) == {"kept"}
    assert got["P1"] == got["P2"] == got["P11"] == "kept"
    assert got["P3"] == got["P4"] == got["P5"] == got["P12"] == got["P13"] == got["P14"] == "kept"
    assert got["P15"] == "kept"


@pytest.mark.parametrize(
    ("changes", "promise", "key", "value"),
    [
        ({"policy__consent__mode": "remind"}, "P8", "policy.consent.mode", "remind"),
        ({"policy__profile__enforce": "off"}, "P2", "policy.profile.enforce", "off"),
        ({"policy__profile__enforce": "warn"}, "P2", "policy.profile.enforce", "warn"),
        ({"policy__marketing_default": True}, "P7", "policy.marketing_default", "true"),
    ],
)
def test_a_weakening_setting_is_named_with_its_value(changes, promise, key, value) -> None:
    verdicts = check(settings(**{"policy__consent__mode": "block", **changes}))
    [verdict] = weakened(verdicts)
    assert verdict.promise.id == promise and verdict.state is State.WEAKENED
    [finding] = verdict.weakened_by
    assert (finding.key, finding.value) == (key, value) and finding.effect


def test_what_depends_on_the_homeserver_and_what_is_not_built_is_said() -> None:
    verdicts = {v.promise.id: v for v in check(settings())}
    assert any("homeserver admin" in h for h in verdicts["P11"].homeserver)
    assert verdicts["P11"].pending == ()
    assert not verdicts["P4"].pending and not verdicts["P5"].pending
    assert any("user_ips_max_age" in h for h in verdicts["P4"].homeserver)  # not checked without homeserver.yaml
    # Enforcement before the write is built (issue 15); it needs the module in the homeserver.
    assert not verdicts["P8"].pending
    assert all(any("synapse-http-antispam" in h for h in verdicts[p].homeserver) for p in ("P1", "P2", "P8", "P9"))
    assert {x.issue for v in verdicts.values() for x in v.pending} == set()


TLS = {"appservice__tls__cert": "/etc/clutto/cert.pem", "appservice__tls__key": "/etc/clutto/key.pem"}


@pytest.mark.parametrize(
    ("changes", "state", "key", "proxy"),
    [
        ({}, "kept", None, True),  # the example: loopback, behind the proxy it declares
        (TLS, "kept", None, False),
        ({**TLS, "appservice__hostname": "0.0.0.0", "policy__collection__trusted_proxies": []}, "kept", None, False),
        ({"policy__collection__trusted_proxies": []}, "weakened", "policy.collection.trusted_proxies", False),
        ({"appservice__hostname": "0.0.0.0"}, "weakened", "appservice.hostname", False),
        ({"appservice__hostname": "::1"}, "kept", None, True),
        ({"portal__public_url": "http://chat.example.com/portal"}, "weakened", "portal.public_url", True),
        ({"portal__public_url": "https://chat.example.com/portal"}, "kept", None, True),
        ({**TLS, "portal__public_url": "http://chat.example.com/portal"}, "weakened", "portal.public_url", False),
        ({"portal__public_url": "http://127.0.0.1:8080/portal"}, "kept", None, True),
    ],
)
def test_https_is_judged_on_the_listener_the_bridge_runs(changes, state, key, proxy) -> None:
    """P13: kept with TLS; on loopback behind a declared proxy it depends on that proxy; weakened otherwise."""
    p13 = next(v for v in check(settings(**changes)) if v.promise.id == "P13")
    assert p13.state.value == state
    assert [f.key for f in p13.weakened_by] == ([key] if key else [])
    assert any("policy.collection.trusted_proxies serves HTTPS" in h for h in p13.homeserver) is proxy
    assert any("client listener serves HTTPS" in h for h in p13.homeserver)  # members' clients talk to the homeserver
    lines = report_lines(check(settings(**changes)))
    assert any(line.startswith(f"P13  {state}") for line in lines)
    if proxy:
        assert any("depends on the homeserver/proxy: the proxy declared" in line for line in lines)


@pytest.mark.parametrize(("mode", "weak"), [("never", True), ("auto", False), ("always", False)])
def test_a_sweep_that_never_redacts_weakens_retention(mode, weak) -> None:
    homeserver = {"redaction_retention_period": "1d"}
    verdicts = check(settings(policy__consent__mode="block", policy__retention__redact=mode), homeserver)
    p11 = next(v for v in verdicts if v.promise.id == "P11")
    assert (p11.state is State.WEAKENED) is weak
    assert [w.key for w in p11.weakened_by] == (["policy.retention.redact"] if weak else [])


@pytest.mark.parametrize(
    ("homeserver", "weak"),
    [
        ({}, True),  # Synapse's default, 7d, is longer than the example's shortest lifetime, 1d
        ({"redaction_retention_period": "1d"}, False),
        ({"redaction_retention_period": 3_600_000}, False),  # milliseconds
        ({"redaction_retention_period": "2d"}, True),
        ({"redaction_retention_period": "1y"}, True),
        ({"redaction_retention_period": None}, True),
    ],
)
def test_the_homeserver_config_is_checked_for_redaction_retention(homeserver, weak) -> None:
    verdicts = check(settings(policy__consent__mode="block"), homeserver)
    p11 = next(v for v in verdicts if v.promise.id == "P11")
    assert (p11.state is State.WEAKENED) is weak
    assert not [h for h in p11.homeserver if "redaction_retention_period" in h]
    if weak:
        assert p11.weakened_by[0].key == "homeserver.yaml:redaction_retention_period"


@pytest.mark.parametrize(
    ("homeserver", "weak"),
    [
        ({}, False),  # Synapse's default, 28d, is within the example's 30d
        ({"user_ips_max_age": "30d"}, False),
        ({"user_ips_max_age": "31d"}, True),
        ({"user_ips_max_age": None}, True),
    ],
)
def test_the_homeserver_config_is_checked_for_ip_retention(homeserver, weak) -> None:
    p4 = next(v for v in check(settings(), homeserver) if v.promise.id == "P4")
    assert (p4.state is State.WEAKENED) is weak
    assert not [h for h in p4.homeserver if "user_ips_max_age" in h]
    if weak:
        assert p4.weakened_by[0].key == "homeserver.yaml:user_ips_max_age"


@pytest.mark.parametrize(
    ("homeserver", "encryption", "weak"),
    [
        ({}, "require", True),  # Synapse hands an appservice no to-device messages by default
        ({"experimental_features": {"msc2409_to_device_messages_enabled": True}}, "default", True),
        (
            {
                "experimental_features": {
                    "msc2409_to_device_messages_enabled": True,
                    "msc3202_transaction_extensions": True,
                }
            },
            "require",
            False,
        ),
        ({}, "off", True),  # weakened by the setting itself, whatever the homeserver
    ],
)
def test_the_homeserver_config_is_checked_for_the_bots_e2ee_flags(homeserver, encryption, weak) -> None:
    p12 = next(v for v in check(settings(policy__encryption=encryption), homeserver) if v.promise.id == "P12")
    assert (p12.state is State.WEAKENED) is weak
    assert not [h for h in p12.homeserver if "experimental_features" in h]
    keys = [f.key for f in p12.weakened_by]
    assert ("homeserver.yaml:experimental_features" in keys) is (weak and encryption != "off")


@pytest.mark.parametrize(
    ("changes", "weak"),
    [
        ({"policy__collection__ip": "full"}, True),
        ({"policy__collection__ip": "hashed"}, False),
        ({"policy__collection__referrer": "full"}, True),
    ],
)
def test_full_addresses_and_referrers_weaken_p4(changes, weak) -> None:
    p4 = next(v for v in check(settings(**changes)) if v.promise.id == "P4")
    assert (p4.state is State.WEAKENED) is weak


def test_report_lines_end_with_counts() -> None:
    lines = report_lines(check(settings(policy__consent__mode="remind")))
    assert lines[0].startswith("P1   kept")
    assert any("weakened by policy.consent.mode: remind" in line for line in lines)
    assert "1 weakened" in lines[-2] and "--homeserver-config" in lines[-1]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clutto_bridge", "promises", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_cli_markdown_prints_the_page() -> None:
    result = cli("--markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout == page.PAGE.read_text()


def test_the_shipped_example_config_keeps_every_promise_under_strict(tmp_path: Path) -> None:
    """`clutto-bridge config example > config.yaml` then `promises --strict`, from a checkout's root."""
    config = tmp_path / "config.yaml"
    example = subprocess.run(
        [sys.executable, "-m", "clutto_bridge", "config", "example"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert example.returncode == 0, example.stderr
    assert example.stdout == (ROOT / "example-config.yaml").read_text()
    config.write_text(example.stdout)
    strict = cli("-c", str(config), "--strict", cwd=ROOT)
    assert strict.returncode == 0, strict.stdout + strict.stderr
    assert "16 kept" in strict.stdout and "weakened" not in strict.stdout
    assert strict.stderr == ""  # config/policy is found: no warning about placeholder texts


def test_cli_report_exits_non_zero_with_strict_only_when_weakened(tmp_path: Path) -> None:
    example = (ROOT / "clutto_bridge" / "example-config.yaml").read_text()
    config = tmp_path / "config.yaml"
    config.write_text(example.replace("mode: block", "mode: remind"))
    plain = cli("-c", str(config), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "P8   weakened" in plain.stdout and "policy.consent.mode: remind" in plain.stdout
    assert cli("-c", str(config), "--strict", cwd=tmp_path).returncode == 1
    config.write_text(example)
    homeserver = tmp_path / "homeserver.yaml"
    homeserver.write_text(
        "server_name: example.com\nredaction_retention_period: 1d\nexperimental_features:\n"
        "  msc2409_to_device_messages_enabled: true\n  msc3202_transaction_extensions: true\n"
    )
    strict = cli("-c", str(config), "--homeserver-config", str(homeserver), "--strict", cwd=tmp_path)
    assert strict.returncode == 0, strict.stdout + strict.stderr
    homeserver.write_text("redaction_retention_period: 30d\n")
    strict = cli("-c", str(config), "--homeserver-config", str(homeserver), "--strict", cwd=tmp_path)
    assert strict.returncode == 1 and "homeserver.yaml:redaction_retention_period: 30d" in strict.stdout
    missing = cli("-c", str(config), "--homeserver-config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 2 and "--homeserver-config" in missing.stderr


# --- the operator's endpoint ------------------------------------------------------------------


async def test_the_api_serves_the_report_to_the_operator_only() -> None:
    import jsonschema
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from clutto_bridge.web.provisioning import PREFIX, ProvisioningAPI
    from tests.unit.test_openapi import AUTH, KEYS, SECRET, fake_services

    services = fake_services()
    services.settings = settings(policy__consent__mode="remind")
    api = ProvisioningAPI(services, SECRET, keys=KEYS)

    async def member(token: str) -> str:
        return "@member:localhost"

    api.openid.user_of = member
    outer = web.Application()
    outer.add_subapp(PREFIX, api.app)
    async with TestClient(TestServer(outer)) as client:
        resp = await client.get(f"{PREFIX}/promises", headers=AUTH)
        report = await resp.json()
        assert resp.status == 200
        schema = {**api.document["components"]["schemas"]["PromiseReport"], "components": api.document["components"]}
        jsonschema.validate(report, schema)
        assert report["weakened"] == ["P8"]
        p8 = report["promises"][7]
        assert p8["weakened_by"] == [
            {"key": "policy.consent.mode", "value": "remind", "effect": p8["weakened_by"][0]["effect"]}
        ]
        assert [p["state"] for p in report["promises"]].count("not yet enforced") == 0
        resp = await client.get(f"{PREFIX}/promises", headers={"Authorization": "Bearer member-openid-token"})
        assert (resp.status, (await resp.json())["errcode"]) == (403, "M_FORBIDDEN")
