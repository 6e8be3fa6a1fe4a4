"""Config: every key validated with a message naming it; upgrades keep the operator's words."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from clutto_bridge.cli import main
from clutto_bridge.config import EXAMPLE_CONFIG, ConfigError, ConfigFile, JobSettings, config_keys, validate
from clutto_bridge.crypto.signing import create_signing_key, key_id, load_signing_key
from clutto_bridge.policy_files import PACKAGED_TEXTS
from tests.conftest import config_with_tokens
from tests.unit.helpers import example, with_value


def test_example_config_is_valid_and_documents_every_key() -> None:
    settings = validate(example())
    assert settings.trial.length == 90 * 86400
    assert settings.bridge.default_rooms == ("general", "random")
    lines = EXAMPLE_CONFIG.read_text().splitlines()
    for key in config_keys():
        leaf = key.split(".")[-1]
        index = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{leaf}:"))
        above = [line.strip() for line in lines[max(0, index - 3) : index]]
        assert any(line.startswith("#") for line in above) or lines[index].count("#"), f"{key} has no comment"


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("homeserver.address", "localhost:8008", "http:// or https://"),
        ("homeserver.domain", "bad domain", "server name"),
        ("homeserver.verify_ssl", "yes", "true or false"),
        ("appservice.port", 70000, "from 1 to 65535"),
        ("appservice.port", "29330", "whole number"),
        ("appservice.database", "mysql://x", "sqlite: or postgres://"),
        ("appservice.database", "postgres:db", "postgres://user"),
        ("appservice.database_opts", {"min_size": 5, "max_size": 2}, "min_size"),
        ("appservice.bot_username", "Clutto Bot", "user name"),
        ("appservice.as_token", "short", "16 characters"),
        ("appservice.transaction_memory", "7 days", "not a duration"),
        ("bridge.command_prefix", "!c lutto", "one word"),
        ("bridge.room_version", "6", "restricted"),
        ("bridge.default_rooms", ["general", "General"], "unique"),
        ("bridge.default_rooms", "general", "list"),
        ("bridge.power_levels", {"owner": 100, "admin": 50, "member": 0}, "guest"),
        ("bridge.power_levels", {"owner": 100, "admin": 50, "member": 0, "guest": 0, "boss": 1}, "unknown role"),
        ("bridge.power_levels", {"owner": 90, "admin": 50, "member": 0, "guest": 0}, "owner must be 100"),
        ("policy.trial.length", "90", "unit"),
        ("policy.trial.grace", "0d", "longer than zero"),
        ("email.enabled", "no", "true or false"),
        ("email.port", 0, "from 1 to 65535"),
        ("email.domain", "mail example", "server name"),
        ("email.headers", [], "at least one header"),
        ("email.headers", ["Sub ject"], "mail header name"),
        ("email.max_size_kib", 0, "whole number"),
        ("provisioning.enabled", 1, "true or false"),
        ("logging.level", "LOUD", "DEBUG, INFO"),
    ],
)
def test_bad_values_name_their_key(key: str, value, fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate(with_value(key, value))
    assert error.value.key == key
    assert fragment in str(error.value)


def test_missing_key_is_named() -> None:
    data = example()
    del data["policy"]["trial"]["grace"]
    with pytest.raises(ConfigError) as error:
        validate(data)
    assert error.value.key == "policy.trial.grace"
    del data["policy"]
    with pytest.raises(ConfigError) as error:
        validate(data)
    assert error.value.key == "policy"


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clutto_bridge", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_config_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EXAMPLE_CONFIG.read_text().replace("port: 29330", "port: many"))
    result = _run_cli("-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "appservice.port" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"clutto-bridge: config error in {config}: appservice.port: must be a whole number from 1 to 65535, got 'many'"
    )

    config.write_text("homeserver: [unclosed")
    result = _run_cli("-c", str(config), cwd=tmp_path)
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr

    result = _run_cli("-c", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_run_refuses_ungenerated_tokens(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(EXAMPLE_CONFIG.read_text())
    # An empty folder: no config/policy there, so the packaged placeholder texts are used.
    result = _run_cli("-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "'config/policy' (policy.consent.texts) does not exist" in result.stderr
    assert "appservice.as_token" in result.stderr and "generate-registration" in result.stderr


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("policy.version", "1999-01", "no policy text 1999-01.md in "),
        ("policy.version", 1.5, 'write the version in quotes, for example "1.5"'),
        ("policy.consent.mode", "nag", "must be one of block, remind"),
        ("policy.profile.allowed", ["first_name", "shoe_size"], "unknown profile field 'shoe_size'"),
        ("policy.profile.required", ["photo"], "photo is required but not in policy.profile.allowed"),
        ("policy.profile.display_name", "{nickname}", "may use only {first_name}, {last_name} and {designation}"),
        ("policy.profile.display_name", "Member", "must use at least one field"),
        ("policy.profile.enforce", "shout", "must be one of reset, warn, off"),
        ("policy.profile.photo_types", ["text/html"], "is not an image type"),
    ],
)
def test_policy_keys_are_checked(key: str, value, message: str) -> None:
    data = with_value(key, value)
    if key == "policy.profile.required":
        data["policy"]["profile"]["allowed"] = ["first_name", "last_name"]
    with pytest.raises(ConfigError) as caught:
        validate(data)
    assert message in str(caught.value) and str(caught.value).startswith("policy.")


def test_display_name_may_only_use_allowed_fields() -> None:
    data = with_value("policy.profile.allowed", ["first_name", "last_name"])
    data["policy"]["profile"]["display_name"] = "{first_name} ({designation})"
    with pytest.raises(ConfigError) as caught:
        validate(data)
    assert caught.value.key == "policy.profile.display_name"


def test_generate_registration_fills_tokens_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.yaml"
    keyset = tmp_path / "keyset.json"
    config.write_text(EXAMPLE_CONFIG.read_text().replace("keyset: clutto-keyset.json", f"keyset: {keyset}"))
    registration = tmp_path / "registration.yaml"
    assert main(["generate-registration", "-c", str(config), "-r", str(registration)]) == 0
    # It created the keyset (owner-only) too, and keeps it on the second run below.
    assert keyset.stat().st_mode & 0o777 == 0o600
    keys = keyset.read_text()
    settings = ConfigFile(config)
    settings.load()
    reg = YAML(typ="safe").load(registration.read_text())
    assert reg["as_token"] == settings["appservice.as_token"] != "generate"
    assert reg["hs_token"] == settings["appservice.hs_token"] != reg["as_token"]
    assert settings["provisioning.shared_secret"] != "generate"
    assert settings["analytics.metrics_secret"] not in ("generate", settings["provisioning.shared_secret"])
    assert reg["sender_localpart"] == "clutto"
    assert reg["namespaces"]["users"] == [{"exclusive": True, "regex": r"@clutto:example\.com"}]
    assert reg["url"] == "http://localhost:29330"
    # The signing key of the audit log's checkpoints, beside the config, owner-only.
    key = tmp_path / "clutto-signing-key.pem"
    first = key_id(load_signing_key(key).public_key())
    assert key.stat().st_mode & 0o777 == 0o600
    # A second run keeps the tokens the homeserver already knows, and the key.
    assert main(["generate-registration", "-c", str(config), "-r", str(registration)]) == 0
    assert YAML(typ="safe").load(registration.read_text())["as_token"] == reg["as_token"]
    assert key_id(load_signing_key(key).public_key()) == first
    assert keyset.read_text() == keys
    assert "# Tokens shared with the homeserver." in config.read_text()
    # Both files hold the tokens: readable by their owner only.
    assert config.stat().st_mode & 0o777 == 0o600
    assert registration.stat().st_mode & 0o777 == 0o600
    # The signing key was created once, owner-only, and kept by the second run.


OLD_CONFIG = """\
# Our production bridge; ask ops before changing.
homeserver:
    address: https://matrix.corp.example   # behind the load balancer
    domain: corp.example
    verify_ssl: true
appservice:
    address: http://bridge.internal:29330
    hostname: 0.0.0.0
    # firewall rule 42 opens this port
    port: 29999
    database: postgres://clutto:secret@db/clutto
    id: clutto
    bot_username: clutto
    bot_displayname: Clutto
    as_token: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    hs_token: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
bridge:
    command_prefix: "!corp"
    default_rooms:
        - lobby
"""


def test_config_upgrade_adds_keys_and_keeps_values_and_comments(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(OLD_CONFIG)
    assert main(["config", "upgrade", "-c", str(config)]) == 0
    text = config.read_text()
    for kept in (
        "# Our production bridge; ask ops before changing.",
        "# behind the load balancer",
        "# firewall rule 42 opens this port",
        '"!corp"',
        "- lobby",
        "port: 29999",
    ):
        assert kept in text
    assert text.index("# firewall rule 42 opens this port") < text.index("port: 29999")
    assert text.index("port: 29999") - text.index("# firewall rule 42 opens this port") < 60
    # New keys arrive with their documentation.
    assert "# How long the ids of handled events are remembered" in text
    assert "# The privacy policy, as code." in text
    file = ConfigFile(config)
    file.load()
    settings = file.settings()
    assert settings.appservice.port == 29999
    assert settings.bridge.default_rooms == ("lobby",)
    assert settings.trial.grace == 30 * 86400
    assert text.count("# The privacy policy, as code.") == 1
    # Upgrading an up-to-date file changes nothing.
    assert main(["config", "upgrade", "-c", str(config)]) == 0
    assert config.read_text() == text


def test_demo_without_synapse_says_how_to_get_it(tmp_path: Path) -> None:
    code = "import sys; sys.modules['synapse'] = None; from clutto_bridge.cli import main; sys.exit(main(['demo']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "clutto-bridge[demo]" in result.stderr and "scripts/dev.py demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_upgrade_writes_new_keys_and_names_what_remains_to_fix(tmp_path: Path) -> None:
    """An old config gains the policy keys; without a policy folder the packaged texts serve."""
    old = EXAMPLE_CONFIG.read_text()
    start = old.index("    # The policy version members agree to")
    end = old.index("    # Trial lifecycle of a new team")
    config = tmp_path / "config.yaml"
    config.write_text(old[:start] + old[end:])
    result = _run_cli("config", "upgrade", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result
    assert "Added" in result.stdout and "policy.version" in result.stdout
    assert "'config/policy' (policy.consent.texts) does not exist" in result.stderr
    assert str(PACKAGED_TEXTS) in result.stderr
    assert 'version: "2026-11"' in config.read_text()
    # The operator's own folder wins; one without the named version is named, not hidden.
    (tmp_path / "config" / "policy").mkdir(parents=True)
    result = _run_cli("config", "check", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "policy.version: no policy text 2026-11.md in config/policy (versions there: none)" in result.stderr


def _leaf_keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, value in node.items():
        if isinstance(value, dict) and f"{prefix}{name}" not in set(config_keys()):
            keys += _leaf_keys(value, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_example_and_models_name_the_same_keys_in_the_same_order() -> None:
    """The models declare the keys, the example documents them: neither may have one the other lacks."""
    assert _leaf_keys(example()) == list(config_keys())


def test_settings_read_as_the_code_reads_them() -> None:
    settings = validate(example())
    assert settings.appservice.port == 29330 and settings.homeserver.domain == "example.com"
    assert settings.bridge.power_levels["member"] == 0
    assert settings.retention.sweep_interval == 86400 and isinstance(settings.retention.sweep_interval, int)
    assert settings.trial.warnings == (7 * 86400, 86400)
    assert settings.consent.version == "2026-11" and settings.consent.current.version == "2026-11"
    assert settings.consent.mode == "block" and set(settings.consent.texts) == {"2026-11"}
    assert settings.profile.photo_max_bytes == 2048 * 1024 and settings.profile.allowed[0] == "first_name"
    assert settings.reminder_interval == 7 * 86400 and settings.marketing_default is False
    assert settings.integrations.bots == () and settings.jobs.lease == 60
    assert settings.export.directory == "" and settings.logging.file == ""
    assert settings.export_folder == Path("clutto.db").absolute().parent / "exports"
    assert settings.bot_mxid == "@clutto:example.com"


def test_durations_in_a_file_need_a_unit_and_code_passes_seconds() -> None:
    with pytest.raises(ConfigError) as caught:
        validate(with_value("jobs.lease", 60))
    assert caught.value.key == "jobs.lease" and "unit" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        validate(with_value("policy.trial.warnings", ["7d", "soon"]))
    assert caught.value.key == "policy.trial.warnings"
    jobs = JobSettings(
        poll_interval=1,
        lease=30,
        max_attempts=3,
        retry_backoff=60,
        homeserver_rate=100,
        concurrency=2,
        keep_finished=60,
    )
    assert jobs.lease == 30


@pytest.mark.parametrize(
    "key, value, named, message",
    [
        ("policy.retention.default", "4000d", "policy.retention.default", "must lie between policy.retention.min and"),
        ("policy.retention.min", "400d", "policy.retention.default", "must lie between"),
        ("homeserver", 5, "homeserver", "must be a map of keys"),
        ("policy.profile.allowed", ["first_name", "last_name"], "policy.profile.photo_types", None),
    ],
)
def test_checks_across_keys_name_the_key(key: str, value, named: str, message: str | None) -> None:
    data = with_value(key, value)
    if named == "policy.profile.photo_types":
        data["policy"]["profile"]["allowed"].append("photo")
        data["policy"]["profile"]["photo_types"] = []
        message = "must name at least one image type while photo is allowed"
    with pytest.raises(ConfigError) as caught:
        validate(data)
    assert caught.value.key == named and message in caught.value.message


def test_missing_policy_folder_gives_the_packaged_texts_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="clutto.config"):
        settings = validate(example())
    assert settings.consent.current.summary and set(settings.consent.texts) == {"2026-11"}
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "'config/policy'" in warning and str(PACKAGED_TEXTS) in warning


def test_policy_folder_without_the_version_names_policy_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "config" / "policy"
    folder.mkdir(parents=True)
    (folder / "2025-01.md").write_text("---\npublished: 2025-01-01\nsummary: s\n---\ntext")
    with pytest.raises(ConfigError) as caught:
        validate(example())
    assert str(caught.value) == "policy.version: no policy text 2026-11.md in config/policy (versions there: 2025-01)"


def test_packaged_texts_lacking_the_version_say_the_folder_is_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        validate(with_value("policy.version", "2030-01"))
    assert caught.value.key == "policy.version"
    assert "packaged placeholder texts (config/policy does not exist) (versions there: 2026-11)" in caught.value.message


def test_policy_texts_path_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "policy.md").write_text("x")
    with pytest.raises(ConfigError) as caught:
        validate(with_value("policy.consent.texts", str(tmp_path / "policy.md")))
    assert caught.value.key == "policy.consent.texts" and "not a folder" in caught.value.message


def test_packaged_texts_are_package_data_and_hold_the_example_version() -> None:
    assert (PACKAGED_TEXTS / f"{example()['policy']['version']}.md").is_file()
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"policy_texts/*.md"' in pyproject and '"pydantic>=2' in pyproject
    # The checkout's config/policy holds our complete policy; the package's copy is only the fallback.
    assert (Path(__file__).parents[2] / "config" / "policy" / f"{example()['policy']['version']}.md").is_file()


def test_config_file_reads_and_writes_dotted_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# kept\nappservice:\n    port: 1   # kept too\n")
    file = ConfigFile(path)
    file.load()
    assert file["appservice.port"] == 1 and file["appservice.nope"] is None and file["nope.deeper"] is None
    file["appservice.port"] = 2
    file["export.directory"] = "out"
    file.save()
    text = path.read_text()
    assert "# kept\n" in text and "port: 2   # kept too" in text and "directory: out" in text


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("appservice.portt", 1, "unknown key `appservice.portt`; did you mean `port`?"),
        ("policy.retention.maxx", "30d", "did you mean `max`?"),
        ("telemetry", {"on": True}, "unknown key"),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_known_key(key: str, value, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate(with_value(key, value))
    assert error.value.key == key
    assert message in error.value.message


def test_a_typo_in_a_required_key_is_named_as_the_typo_not_as_the_missing_key() -> None:
    data = example()
    data["appservice"]["portt"] = data["appservice"].pop("port")
    with pytest.raises(ConfigError) as error:
        validate(data)
    assert str(error.value) == "appservice.portt: unknown key `appservice.portt`; did you mean `port`?"


@pytest.mark.parametrize(
    "change, key, message",
    [
        (
            {"appservice.as_token": "s" * 32, "appservice.hs_token": "s" * 32},
            "appservice.hs_token",
            "must differ from appservice.as_token",
        ),
        ({"portal.public_url": "javascript:alert(1)"}, "portal.public_url", "must be an http:// or https:// URL"),
        (
            {"portal.public_url": "ftp://chat.example.com/portal"},
            "portal.public_url",
            "must be an http:// or https:// URL",
        ),
        (
            {"policy.trial.warnings": ["100d", "7d"]},
            "policy.trial.warnings",
            "a warning 100d before the purge is longer than the trial (policy.trial.length: 90d)",
        ),
    ],
)
def test_config_check_refuses_values_that_would_start_a_broken_bridge(
    tmp_path: Path, change: dict, key: str, message: str
) -> None:
    data = example()
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    with pytest.raises(ConfigError) as error:
        validate(data)
    assert error.value.key == key and message in error.value.message
    config = tmp_path / "config.yaml"
    YAML().dump(data, config)
    result = _run_cli("config", "check", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and f": {key}: {message}" in result.stderr, result.stderr


def test_the_edges_of_the_new_checks_pass() -> None:
    """Tokens still to generate may be equal; an empty public_url or an https one is fine; a
    warning as long as the trial is fine."""
    assert validate(example()).appservice.as_token == "generate"
    assert validate(with_value("portal.public_url", "https://chat.example.com/portal/")).portal.public_url == (
        "https://chat.example.com/portal"
    )
    assert validate(with_value("policy.trial.warnings", ["90d"])).trial.warnings == (90 * 86400,)


def test_a_postgres_url_with_a_bad_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as error:
        validate(with_value("appservice.database", "postgres://u:p@127.0.0.1:notaport/db"))
    assert error.value.key == "appservice.database" and "port" in error.value.message


@pytest.mark.parametrize(
    "old, new, key",
    [
        ("database: sqlite:clutto.db", "database: sqlite:/nonexistent/dir/x.db", "appservice.database"),
        ('file: ""', "file: /nonexistent/dir/bridge.log", "logging.file"),
        ('directory: ""', "directory: /proc/forbidden", "export.directory"),
        ("signing_key: clutto-signing-key.pem", "signing_key: /nonexistent/dir/key.pem", "security.signing_key"),
    ],
)
def test_config_check_catches_what_start_up_would_trip_on(tmp_path: Path, old: str, new: str, key: str) -> None:
    config = tmp_path / "config.yaml"
    config_with_tokens(config, **{old: new})
    for command in (["config", "check"], []):  # the check, and start-up itself
        result = _run_cli(*command, "-c", str(config), cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        lines = [line for line in result.stderr.strip().splitlines() if "policy.consent.texts" not in line]
        assert len(lines) == 1 and f": {key}: " in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_a_signing_key_others_can_read_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config_with_tokens(config)
    key = tmp_path / "clutto-signing-key.pem"  # beside the config, wherever the bridge runs from
    create_signing_key(key)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _run_cli("config", "check", "-c", str(config), cwd=elsewhere).returncode == 0
    key.chmod(0o640)
    for command in (["config", "check"], []):
        result = _run_cli(*command, "-c", str(config), cwd=elsewhere)
        assert (
            result.returncode == 2 and f": security.signing_key: {key} is readable by group or others" in result.stderr
        )
        assert f"chmod 600 {key}" in result.stderr and "Traceback" not in result.stderr


def test_start_up_failures_of_the_environment_name_their_key(tmp_path: Path) -> None:
    import socket

    config = tmp_path / "config.yaml"
    config_with_tokens(config, **{"database: sqlite:clutto.db": "database: postgres://nobody:x@127.0.0.1:1/none"})
    result = _run_cli("-c", str(config), cwd=tmp_path)
    assert (
        result.returncode == 2
        and "config error" in result.stderr
        and ": appservice.database: cannot open" in result.stderr
    )
    assert "Traceback" not in result.stderr

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config_with_tokens(config, **{"port: 29330": f"port: {port}"})
        result = _run_cli("-c", str(config), cwd=tmp_path)
        debug = _run_cli("--debug", "-c", str(config), cwd=tmp_path)  # while the port is still taken
    assert result.returncode == 2 and f": appservice.port: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    # The same failure; with --debug the log carries the traceback.
    assert debug.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in debug.stderr
    assert "Traceback" in debug.stderr
