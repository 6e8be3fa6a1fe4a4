"""``clutto-bridge doctor`` on a homeserver.yaml that Synapse wrote itself (--generate-config):
it fails what it should, ``--fix`` corrects it keeping every comment, Synapse starts with the
result, its request log stays quiet, and the bot-admin check asks the running homeserver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from ruamel.yaml import YAML

from clutto_bridge import cli
from clutto_bridge.config import ConfigFile
from clutto_bridge.demo.synapse import LocalSynapse, free_port
from clutto_bridge.doctor import doctor
from clutto_bridge.doctor.checks import Status
from tests.conftest import config_with_tokens
from tests.integration.helpers import wait_until_serving

SHOULD_FAIL = {
    "request log",
    "redaction_retention_period",
    "media_retention",
    "report_stats",
    "include_profile_data_on_invite",
    "limit_profile_requests_to_users_who_share_rooms",
    "require_auth_for_profile_requests",
    "app_service_config_files",
    "E2EE in transactions",
}


def _generate(folder: Path, port: int) -> Path:
    """Synapse's own --generate-config, then only what this machine needs: a free port, IPv4 loopback."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "synapse.app.homeserver",
            "--server-name",
            "localhost",
            "--config-path",
            "homeserver.yaml",
            "--generate-config",
            "--report-stats=yes",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    path = folder / "homeserver.yaml"
    text = path.read_text()
    assert "port: 8008" in text and "    - ::1\n" in text and "report_stats: true" in text
    path.write_text(text.replace("port: 8008", f"port: {port}").replace("    - ::1\n", ""))
    return path


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line and "'#" not in line]


def _statuses(report) -> dict[str, Status]:
    return {r.check: r.status for r in report.results}


def _run_doctor(*args: str) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-m", "clutto_bridge", "doctor", *args], capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.promise("P4")
async def test_doctor_fixes_a_generated_homeserver_config_that_synapse_then_runs_with(tmp_path: Path) -> None:
    port = free_port()
    hs_path = _generate(tmp_path, port)
    original = hs_path.read_text()
    log_path = tmp_path / "localhost.log.config"
    log_original = log_path.read_text()
    config, registration = tmp_path / "config.yaml", tmp_path / "registration.yaml"
    config_with_tokens(
        config,
        **{
            "address: http://localhost:8008": f"address: http://127.0.0.1:{port}",
            "    domain: example.com": "    domain: localhost",
        },
    )
    assert cli.main(["generate-registration", "-c", str(config), "-r", str(registration)]) == 0
    file = ConfigFile(config)
    file.load()
    settings = file.settings()

    code, out = _run_doctor("-c", str(config), "--homeserver-config", str(hs_path))
    assert code == 1, out
    before = await asyncio.to_thread(doctor, settings, hs_path)
    failing = {check for check, status in _statuses(before).items() if status is Status.FAIL}
    assert failing == SHOULD_FAIL
    assert _statuses(before)["bot is a server admin"] is Status.UNCHECKED  # Synapse is not running
    assert "not reachable" in out and "FAIL" in out and "why:" in out

    code, out = _run_doctor(
        "-c", str(config), "--homeserver-config", str(hs_path), "--fix", "--registration", str(registration)
    )
    assert code == 0, out
    assert "Changed (backups:" in out
    fixed = hs_path.read_text()
    assert sorted(p.name for p in tmp_path.glob("*.clutto-backup-*")) == sorted(
        [
            f"homeserver.yaml.clutto-backup-{p.name.rsplit('-', 1)[1]}"
            for p in tmp_path.glob("homeserver.yaml.clutto-backup-*")
        ]
        + [
            f"localhost.log.config.clutto-backup-{p.name.rsplit('-', 1)[1]}"
            for p in tmp_path.glob("localhost.log.config.clutto-backup-*")
        ]
    )
    assert next(tmp_path.glob("homeserver.yaml.clutto-backup-*")).read_text() == original
    assert next(tmp_path.glob("localhost.log.config.clutto-backup-*")).read_text() == log_original
    # Every comment of both files is still there, and only checked keys changed.
    for before_text, after_text in ((original, fixed), (log_original, log_path.read_text())):
        kept = _comments(after_text)
        assert all(comment in kept for comment in _comments(before_text))
    old, new = YAML(typ="safe").load(original), YAML(typ="safe").load(fixed)
    changed = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
    assert changed == {
        "redaction_retention_period",
        "media_retention",
        "report_stats",
        "include_profile_data_on_invite",
        "limit_profile_requests_to_users_who_share_rooms",
        "require_auth_for_profile_requests",
        "app_service_config_files",
        "experimental_features",
    }
    assert new["experimental_features"] == {
        "msc2409_to_device_messages_enabled": True,
        "msc3202_transaction_extensions": True,
    }
    assert new["report_stats"] is False and new["app_service_config_files"] == [str(registration.absolute())]
    assert YAML(typ="safe").load(log_path.read_text())["loggers"]["synapse.access"] == {"level": "WARNING"}

    # Synapse starts with the fixed config (and loads the registration doctor added).
    synapse = subprocess.Popen(
        [sys.executable, "-m", "synapse.app.homeserver", "-c", str(hs_path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until_serving(
                synapse,
                http,
                f"http://127.0.0.1:{port}/_matrix/client/versions",
                "Synapse answering /_matrix/client/versions",
                lambda: (tmp_path / "homeserver.log").read_text()[-3000:],
                timeout=90,
            )
            running = await asyncio.to_thread(doctor, settings, hs_path)
            assert _statuses(running)["bot is a server admin"] is Status.FAIL  # asked, and it is not (yet)
            local = LocalSynapse(tmp_path, port=port)
            local.shared_secret = YAML(typ="safe").load(fixed)["registration_shared_secret"]
            bot = await local.register_appservice_user(settings.appservice.as_token, settings.appservice.bot_username)
            admin = await local.register_user("doctor-admin", admin=True)
            await local.make_admin(admin.access_token, bot)
            running = await asyncio.to_thread(doctor, settings, hs_path)
            # All pass but the enforcement module: only the operator can install it into Synapse's
            # environment, so --fix leaves it out, and its absence is a warning, not a failure.
            assert [r.check for r in running.results if r.status is not Status.PASS] == ["enforcement module"]
            assert _statuses(running)["enforcement module"] is Status.WARN
            assert running.exit_code == 0
    finally:
        os.killpg(synapse.pid, signal.SIGTERM)
        await asyncio.to_thread(synapse.wait, 30)
    log = (tmp_path / "homeserver.log").read_text()
    assert "Processed request" not in log  # the request log (synapse.access) is off; it would name 127.0.0.1
    assert "synapse.access" not in log
