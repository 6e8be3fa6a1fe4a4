"""The keys of P13: TLS files, the signing key, webhooks; refusals name the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clutto_bridge.config import ConfigError, ConfigFile, check_environment
from clutto_bridge.registration import registration
from tests.conftest import config_with_tokens

HOOK = "webhooks: [{url: 'https://h.example.com/x', events: %s, headers: %s}]"


def load(tmp_path: Path, **replace: str):
    config = tmp_path / "config.yaml"
    config_with_tokens(config, **replace)
    file = ConfigFile(config)
    file.load()
    return file.settings()


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("webhooks: []", HOOK % ("[audit, nope]", "{}"), "webhooks.0.events", "must be one of audit"),
        ("webhooks: []", HOOK % ("[]", "{}"), "webhooks.0.events", "at least one"),
        ("webhooks: []", HOOK % ("[audit]", "{'Bad Name': x}"), "webhooks.0.headers", "not a header name"),
        ("webhooks: []", HOOK % ("[audit]", "{Signature: x}"), "webhooks.0.headers", "set by the bridge"),
        ("webhooks: []", "webhooks: [{url: 'ftp://h', events: [audit], headers: {}}]", "webhooks.0.url", "http://"),
        ('        cert: ""', "        cert: /tmp/c.pem", "appservice.tls.key", "both"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(tmp_path: Path, old: str, new: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, **{old: new})
    assert error.value.key == key and words in error.value.message


def test_webhooks_and_tls_as_written(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        **{
            "webhooks: []": HOOK % ("[team.purged, export.ready]", "{X-Hook-Token: s3cret}"),
            '        cert: ""': "        cert: /etc/clutto/cert.pem",
            '        key: ""': "        key: /etc/clutto/key.pem",
        },
    )
    [hook] = settings.webhooks
    assert hook.events == ("team.purged", "export.ready") and hook.headers == {"X-Hook-Token": "s3cret"}
    assert settings.appservice.tls.enabled
    assert registration(settings)["url"] == "https://localhost:29330"  # the address says http://


def test_start_up_makes_a_missing_signing_key_and_refuses_an_open_one_naming_the_file(tmp_path: Path) -> None:
    from clutto_bridge.config import signing_keys

    settings = load(tmp_path)
    key = settings.signing_key_path
    assert not key.exists()
    check_environment(settings)  # a missing key is made at start, where it can be written
    first = signing_keys(settings).current_id
    assert key.stat().st_mode & 0o777 == 0o600
    os.chmod(key, 0o644)
    with pytest.raises(ConfigError) as error:
        check_environment(settings)
    assert error.value.key == "security.signing_key" and str(key) in error.value.message
    with pytest.raises(ConfigError) as error:
        signing_keys(settings)
    assert error.value.key == "security.signing_key" and "chmod 600" in error.value.message
    os.chmod(key, 0o600)
    assert signing_keys(settings).current_id == first  # an existing key is kept, never replaced


def test_earlier_keys_stay_published_after_a_key_change(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from clutto_bridge.config import signing_keys
    from clutto_bridge.crypto.signing import create_signing_key, key_id

    old = create_signing_key(tmp_path / "old.key")
    public = tmp_path / "old.pub"  # an operator may keep only the public half
    public.write_bytes(
        old.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    settings = load(
        tmp_path, **{"previous_signing_keys: []": f"previous_signing_keys: [{public}, {tmp_path / 'old.key'}]"}
    )
    keys = signing_keys(settings)
    kids = [k["kid"] for k in keys.jwks()["keys"]]
    assert kids[0] == keys.current_id != key_id(old.public_key())
    assert kids[1:] == [key_id(old.public_key())]  # listed once
    broken = load(tmp_path, **{"previous_signing_keys: []": f"previous_signing_keys: [{tmp_path / 'gone.pub'}]"})
    with pytest.raises(ConfigError) as error:
        signing_keys(broken)
    assert error.value.key == "security.previous_signing_keys" and "gone.pub" in error.value.message
