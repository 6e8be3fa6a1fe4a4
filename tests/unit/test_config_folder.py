"""The top-level ``config/`` folder: our complete policy text, which a checkout's example
config finds without a warning, and the homeserver snippets, held to what ``doctor`` recommends
so they cannot drift from it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from clutto_bridge.config import validate
from clutto_bridge.doctor import requirements
from clutto_bridge.doctor.checks import E2EE_REGISTRATION_FLAGS, HOMESERVER, LOG_CONFIG, Facts, Status, run_checks
from clutto_bridge.policy_files import CHECKOUT_TEXTS, PACKAGED_TEXTS, read_texts, shipped_texts
from clutto_bridge.promises.registry import PROMISES
from clutto_bridge.web.antispam import module_config
from tests.unit.helpers import example

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "config" / "homeserver"
SECRET = "REPLACE-WITH-antispam.shared_secret"

# Where the policy text makes each promise, in the words a member reads there.
PROMISE_WORDS = {
    "P1": "belong to your team and are governed by its Customer",
    "P2": "first name, last name, designation and photo",
    "P3": "email address, the team name, your user name and your password",
    "P4": "only as this service is configured",
    "P5": "only with your consent",
    "P6": "only with your permission",
    "P7": "only if you opted in",
    "P8": "every member is told",
    "P9": "Customer controls who is provisioned",
    "P10": "purged irreversibly",
    "P11": "Each team chooses how long its messages are kept",
    "P12": "encrypted in our database",
    "P13": "HTTPS",
    "P14": "recorded",
    "P15": "aggregated, de-identified",
    "P16": "only header information",
}


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def test_the_policy_text_is_complete_and_not_the_placeholder() -> None:
    version = example()["policy"]["version"]
    text = read_texts(CHECKOUT_TEXTS)[version]
    assert set(PROMISE_WORDS) == {p.id for p in PROMISES}, "a new promise needs its place in config/policy"
    words_there = " ".join(text.text.split())
    missing = [p for p, words in PROMISE_WORDS.items() if words not in words_there]
    assert missing == []
    assert text.summary and text.reconsent
    placeholder = read_texts(PACKAGED_TEXTS)[version]
    assert "placeholder" in placeholder.text and "placeholder" not in text.text.lower()
    assert "Operators replace" not in text.text


def test_a_checkout_finds_config_policy_without_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The README's commands and the demo run from the repository root."""
    monkeypatch.chdir(ROOT)
    with caplog.at_level(logging.WARNING, logger="clutto.config"):
        settings = validate(example())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert settings.consent.current.text == read_texts(CHECKOUT_TEXTS)[settings.consent.version].text
    assert shipped_texts() == CHECKOUT_TEXTS  # what the demo and the benchmarks use from a checkout


def test_the_dockerfile_puts_the_policy_where_the_image_runs() -> None:
    """The image runs in /data with config.yaml there: config/policy resolves to /data/config/policy."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "WORKDIR /data" in dockerfile
    assert "COPY --chown=clutto config /data/config" in dockerfile


def _snippets() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in ("privacy.yaml", "listeners.yaml", "antispam.yaml", "e2ee.yaml"):
        merged.update(load(SNIPPETS / name))
    return merged


def _settings():
    data = example()
    data["antispam"]["shared_secret"] = SECRET
    return validate(data)


def _facts(homeserver: dict, log_config: dict | None) -> Facts:
    settings = _settings()
    # What generate-registration writes: the bridge's token and the E2EE flags.
    registrations = {
        str(f): {"as_token": settings.appservice.as_token, **dict.fromkeys(E2EE_REGISTRATION_FLAGS, True)}
        for f in homeserver.get("app_service_config_files") or []
    }
    return Facts(homeserver=homeserver, log_config=log_config, registrations=registrations)


def test_the_homeserver_snippets_pass_every_doctor_check() -> None:
    results = run_checks(_facts(_snippets(), load(SNIPPETS / "log.yaml")), requirements(_settings()))
    not_passing = [(r.check, r.status.value, r.found) for r in results if r.status is not Status.PASS]
    # Neither can be read from the files: the bot's admin flag needs the running homeserver, and
    # how the bridge is supervised (its watchdog) is not in homeserver.yaml.
    assert not_passing == [
        ("bot is a server admin", "not checked", "homeserver not reachable"),
        ("hung bridge", "not checked", "how the bridge is supervised (not in homeserver.yaml)"),
    ]


def _at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def test_every_fix_doctor_recommends_is_in_the_snippets() -> None:
    """What doctor would write into a bare homeserver.yaml is what the snippets say, value for value."""
    bare = {
        "server_name": "example.com",
        "listeners": [
            {"type": "http", "port": 8008, "bind_addresses": ["127.0.0.1"], "resources": [{"names": ["client"]}]}
        ],
    }
    noisy = {"version": 1, "loggers": {"synapse.access": {"level": "INFO"}}}
    registration = Path("/data/registration.yaml")
    results = run_checks(_facts(bare, noisy), requirements(_settings(), registration))
    snippets = {HOMESERVER: _snippets(), LOG_CONFIG: load(SNIPPETS / "log.yaml")}
    fixes = [change for r in results for change in r.fixes]
    assert {c.path[0] for c in fixes} >= {
        "redaction_retention_period",
        "media_retention",
        "include_profile_data_on_invite",
        "app_service_config_files",
        "listeners",
        "loggers",
    }
    for change in fixes:
        there = _at(snippets[change.file], change.path)
        if change.append:
            assert change.value in there, change.describe()
        else:
            assert there == change.value, change.describe()


def test_the_module_block_is_the_one_doctor_asks_for() -> None:
    settings = _settings()
    [entry] = _snippets()["modules"]
    assert entry == module_config(settings.appservice.address, SECRET)


def test_the_e2ee_flags_are_the_ones_synapse_reads() -> None:
    from synapse.config.experimental import ExperimentalConfig

    flags = _snippets()["experimental_features"]
    assert flags == {"msc2409_to_device_messages_enabled": True, "msc3202_transaction_extensions": True}
    config = ExperimentalConfig(None)
    config.read_config({"experimental_features": flags}, allow_secrets_in_config=False)
    assert config.msc2409_to_device_messages_enabled and config.msc3202_transaction_extensions
