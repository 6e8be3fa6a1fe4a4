"""Bridge settings and registration for a local Synapse (shared by the demo and the tests)."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

from ruamel.yaml import YAML

from clutto_bridge.config import EXAMPLE_CONFIG, ConfigFile, Settings
from clutto_bridge.crypto import KeysetFile
from clutto_bridge.demo.synapse import LocalSynapse, free_port
from clutto_bridge.policy_files import shipped_texts
from clutto_bridge.registration import ensure_signing_key, registration
from clutto_bridge.web.antispam import module_config

# Our complete policy in a checkout's config/policy; the packaged placeholders in a wheel.
POLICY_TEXTS = shipped_texts()


def bridge_config(
    folder: Path, synapse: LocalSynapse, port: int, database: str | None = None, appservice_url: str | None = None
) -> ConfigFile:
    """A config file in ``folder`` for a bridge next to ``synapse``, with fresh secrets."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(EXAMPLE_CONFIG.read_text())
    file = ConfigFile(path)
    file.load()
    file["homeserver.address"] = synapse.url
    file["homeserver.domain"] = synapse.server_name
    file["appservice.address"] = appservice_url or f"http://127.0.0.1:{port}"
    file["appservice.port"] = port
    file["appservice.database"] = database or f"sqlite:{folder / 'clutto.db'}"
    file["policy.consent.texts"] = str(POLICY_TEXTS)
    # No proxy in front of the demo: plain HTTP on loopback, and its privacy page says P13 is weakened.
    file["policy.collection.trusted_proxies"] = []
    _email_on(file, free_port())
    _signing_key(file, folder)
    _keyset_in(file, folder)
    file.fill_generated_secrets()
    file.save()
    return file


def reuse_bridge_config(folder: Path, synapse: LocalSynapse, port_free: Callable[[int], bool]) -> ConfigFile:
    """The config a previous run wrote in ``folder`` (same secrets and database), pointed at
    ``synapse``, on its previous port while that is free."""
    file = ConfigFile(folder / "config.yaml")
    file.load()
    file.upgrade()  # a demo folder from an older version lacks the newer keys
    mail_port = file["email.port"]
    _email_on(file, mail_port if file["email.enabled"] and port_free(mail_port) else free_port())
    port = file["appservice.port"]
    if not isinstance(port, int) or not port_free(port):
        port = free_port()
    file["homeserver.address"] = synapse.url
    file["appservice.address"] = f"http://127.0.0.1:{port}"
    file["appservice.port"] = port
    # A demo folder from an older version lacks newer keys (and their secrets): add them.
    file.upgrade()
    _signing_key(file, folder)
    _keyset_in(file, folder)
    file.fill_generated_secrets()
    file.save()
    return file


def _signing_key(file: ConfigFile, folder: Path) -> None:
    """The demo's signing key lives in its folder (kept when the folder is reused)."""
    key = folder / "signing.key"
    file["security.signing_key"] = str(key)
    ensure_signing_key(key)


def homeserver_modules(settings: Settings) -> dict:
    """homeserver.yaml keys for the demo's Synapse: synapse-http-antispam asking this bridge
    before it stores (when the module is installed: the ``demo`` extra pins it)."""
    if not settings.antispam.enabled or importlib.util.find_spec("synapse_http_antispam") is None:
        return {}
    return {"modules": [module_config(settings.appservice.address, settings.antispam.shared_secret)]}


def _keyset_in(file: ConfigFile, folder: Path) -> None:
    """The demo's keyset lives in its folder (created once; a resumed demo keeps its keys)."""
    path = Path(file["security.keyset"])
    if not path.is_absolute():
        path = folder / "keyset.json"
        file["security.keyset"] = str(path)
    KeysetFile(path).ensure(int(time.time()))


def _email_on(file: ConfigFile, port: int) -> None:
    """The demo takes mail (headers only) on a free local port, for team addresses @mail.localhost."""
    file["email.enabled"] = True
    file["email.port"] = port
    file["email.domain"] = "mail.localhost"


def bridge_settings(folder: Path, synapse: LocalSynapse, port: int, **kwargs: str | None) -> Settings:
    return bridge_config(folder, synapse, port, **kwargs).settings()


def write_registration(folder: Path, settings: Settings) -> Path:
    path = folder / "registration.yaml"
    with open(path, "w") as stream:
        YAML().dump(registration(settings), stream)
    return path
