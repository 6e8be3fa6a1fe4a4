"""Command line: run the bridge, write the registration, upgrade the config, run the demo,
report which privacy promises a configuration keeps."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from clutto_bridge import __version__
from clutto_bridge.config import EXAMPLE_CONFIG, GENERATE, ConfigError, ConfigFile, Settings, check_environment
from clutto_bridge.crypto import KeysetFile
from clutto_bridge.logs import setup_logging
from clutto_bridge.registration import write_registration

EXIT_CONFIG = 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clutto-bridge",
        description="Matrix application service for privacy-governed workplace chat.",
    )
    parser.add_argument("--version", action="version", version=f"clutto-bridge {__version__}")
    parser.add_argument("-c", "--config", default="config.yaml", help="config file (default: config.yaml)")
    parser.add_argument("--debug", action="store_true", help="show the traceback when start-up fails")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_cmd = commands.add_parser("run", help="run the bridge (the default)")
    run_cmd.add_argument("-c", "--config", dest="sub_config", help="config file")
    worker = commands.add_parser(
        "worker",
        help="run only the job runner (sweeps, exports, purges), beside a main process (PostgreSQL)",
    )
    worker.add_argument("-c", "--config", dest="sub_config", help="config file (the main process's)")
    reg = commands.add_parser("generate-registration", help="write the appservice registration for the homeserver")
    reg.add_argument("-c", "--config", dest="sub_config", help="config file")
    reg.add_argument(
        "-r", "--registration", default="registration.yaml", help="output file (default: registration.yaml)"
    )
    cfg = commands.add_parser("config", help="work with the config file")
    cfg_commands = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    upgrade = cfg_commands.add_parser(
        "upgrade", help="add new keys with their defaults, keeping your values and comments"
    )
    upgrade.add_argument("-c", "--config", dest="sub_config", help="config file")
    check = cfg_commands.add_parser("check", help="validate the config file")
    check.add_argument("-c", "--config", dest="sub_config", help="config file")
    cfg_commands.add_parser("example", help="print the documented example config")
    retention = commands.add_parser("retention", help="retention of a team, through the running bridge")
    retention.add_argument("action", choices=["preview", "sweep", "status"], help="what to do")
    retention.add_argument("--team", required=True, help="team id (see GET /_clutto/v1/teams)")
    retention.add_argument("-c", "--config", dest="sub_config", help="config file")
    plan = commands.add_parser("plan", help="set a team's plan (trial teams are purged after trial and grace)")
    plan.add_argument("plan", choices=["trial", "paid"])
    plan.add_argument("--team", required=True, help="team id")
    plan.add_argument("-c", "--config", dest="sub_config", help="config file")
    promises = commands.add_parser(
        "promises",
        help="which privacy promises this config keeps, weakens or cannot keep yet",
        description="Report every promise of the privacy policy against the config (kept, partly kept, weakened "
        "by a named setting, not applicable, not yet enforced), or print the page docs/promises.md.",
    )
    promises.add_argument("-c", "--config", dest="sub_config", help="config file")
    promises.add_argument("--markdown", action="store_true", help="print docs/promises.md (needs no config)")
    promises.add_argument(
        "--homeserver-config", type=Path, help="the homeserver's homeserver.yaml, to check its settings too"
    )
    promises.add_argument("--strict", action="store_true", help="exit with 1 when any promise is weakened")
    docs = commands.add_parser(
        "docs",
        help="the documentation pages generated from the code (commands, config keys, API, audit, promises)",
    )
    docs.add_argument(
        "docs_command",
        choices=["generate", "check"],
        help="generate: write the pages that changed; check: exit with 1 when one is stale",
    )
    doctor = commands.add_parser(
        "doctor",
        help="audit the homeserver's config (and its log config) against the policy; --fix corrects it",
        description="Check homeserver.yaml and the log config it points to against this config's policy and print "
        "a table: check, status, found, required, why. Exit code 0 when nothing fails, 1 otherwise.",
    )
    doctor.add_argument("-c", "--config", dest="sub_config", help="config file")
    doctor.add_argument("--homeserver-config", type=Path, required=True, help="the homeserver's homeserver.yaml")
    doctor.add_argument(
        "--fix", action="store_true", help="write the needed changes (comments kept), after a backup beside each file"
    )
    doctor.add_argument(
        "--registration", type=Path, help="the bridge's registration file, for --fix to add to app_service_config_files"
    )
    keys = commands.add_parser(
        "keys",
        help="the keyset that encrypts personal data: init, rotate, status, retire",
        description="The keyset file (security.keyset) holds AES-256-GCM keys; the primary encrypts, the others "
        "only decrypt. rotate adds a new primary and queues the re-encryption of every value, which the running "
        "bridge does in batches; retire removes a key no value uses any more.",
    )
    keys.add_argument("action", choices=["init", "rotate", "status", "retire"])
    keys.add_argument("key_id", nargs="?", type=int, help="retire: the id of the key to remove")
    keys.add_argument("-c", "--config", dest="sub_config", help="config file")
    keys.add_argument("--batch", type=int, default=200, help="rotate: values re-encrypted per batch (default 200)")
    keys.add_argument("--wait", action="store_true", help="rotate: follow the re-encryption until it is done")
    health = commands.add_parser(
        "health", help="exit 0 if the running bridge answers /_clutto/health in time (Docker HEALTHCHECK)"
    )
    health.add_argument("-c", "--config", dest="sub_config", help="config file")
    health.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer (default 10)")
    report = commands.add_parser("report", help="aggregated, de-identified reports, through the running bridge")
    report.add_argument("report", choices=["usage"], help="usage: teams and members per sign-up week, plan and size")
    report.add_argument("-c", "--config", dest="sub_config", help="config file")
    audit = commands.add_parser("audit", help="check the hash-chained, signed audit log offline, or export it")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_commands.add_parser(
        "verify",
        help="check every row's hash and every checkpoint's signature; name the first that does not match",
    )
    verify.add_argument("-c", "--config", dest="sub_config", help="config file (its database is read)")
    verify.add_argument("--file", type=Path, help="verify an export (audit export FILE) instead; needs no config")
    verify.add_argument(
        "--witness",
        type=Path,
        help="the witness file to hold the log against (default: the one beside security.keyset, or with --file "
        "the one the export holds); it catches the newest rows deleted with their checkpoints",
    )
    verify.add_argument(
        "--trusted-keys",
        type=Path,
        help="a JWK Set of the signing keys you trust; a checkpoint signed by another key fails "
        "(default: the public keys the log recorded)",
    )
    export = audit_commands.add_parser("export", help="write rows, checkpoints and public keys as JSON Lines")
    export.add_argument("file", type=Path, help="file to write")
    export.add_argument("-c", "--config", dest="sub_config", help="config file")
    demo = commands.add_parser("demo", help="run a throwaway Synapse with the bridge and a demo team")
    demo.add_argument(
        "--dir",
        type=Path,
        help="folder for the demo's files, kept when it stops; a demo's folder is resumed "
        "(default: a temporary folder, deleted when the demo stops)",
    )
    demo.add_argument("--fresh", action="store_true", help="with --dir: clear the demo's folder and start over")
    demo.add_argument(
        "--port", type=int, help="homeserver port (default: the resumed demo's, else $CLUTTO_DEMO_PORT, else 8008)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_path = getattr(args, "sub_config", None) or args.config
    try:
        if args.command == "generate-registration":
            return generate_registration(config_path, args.registration)
        if args.command == "config":
            return config_command(args.config_command, config_path)
        if args.command == "retention":
            return operation(config_path, args.action, args.team)
        if args.command == "plan":
            return operation(config_path, "plan", args.team, args.plan)
        if args.command == "promises":
            return promises_command(config_path, args.markdown, args.homeserver_config, args.strict)
        if args.command == "report":
            return report(config_path, args.report)
        if args.command == "health":
            return health(config_path, args.timeout)
        if args.command == "audit":
            return audit_command(args, config_path)
        if args.command == "docs":
            return docs_command(args.docs_command)
        if args.command == "doctor":
            return doctor_command(config_path, args.homeserver_config, args.fix, args.registration)
        if args.command == "keys":
            return keys_command(config_path, args.action, args.key_id, args.batch, args.wait)
        if args.command == "demo":
            from clutto_bridge.demo.run import run_demo

            return run_demo(args.dir, args.port, fresh=args.fresh)
        if args.command == "worker":
            return run(config_path, debug=args.debug, worker=True)
        return run(config_path, debug=args.debug)
    except ConfigError as e:
        print(f"clutto-bridge: config error in {config_path}: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def docs_command(action: str) -> int:
    from clutto_bridge import docs_pages

    if action == "check":
        stale = docs_pages.stale()
        for name in stale:
            print(f"{name} is stale; run: {docs_pages.COMMAND}")
        return 1 if stale else 0
    for name in docs_pages.generate():
        print(f"wrote {name}")
    return 0


def open_config(path: str) -> ConfigFile:
    # Loading may warn (the packaged policy texts stand in for a missing folder) before
    # the configured logging exists; until setup_logging these warnings go to stderr.
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    file = ConfigFile(path)
    file.load()
    return file


def load_settings(path: str) -> tuple[ConfigFile, Settings]:
    file = open_config(path)
    return file, file.settings()


def generate_registration(config_path: str, output: str) -> int:
    from clutto_bridge.crypto.signing import SigningKeyError, load_or_create_signing_key

    file, _ = load_settings(config_path)
    if file.fill_generated_secrets():
        file.save()
        print(f"Generated tokens, the provisioning secret and the metrics secret into {config_path}")
    settings = file.settings()
    try:
        _, created = load_or_create_signing_key(settings.signing_key_path)
    except SigningKeyError as e:
        raise ConfigError("security.signing_key", str(e)) from None
    if created:
        print(f"Made the signing key {settings.signing_key_path} (keep it readable by the bridge only)")
    if KeysetFile(settings.keyset_path).ensure(int(time.time())):
        print(f"Created the keyset {settings.keyset_path} (security.keyset). Back it up.")
    write_registration(settings, output)
    print(f"Wrote {output}. Add it to app_service_config_files in the homeserver config and restart it.")
    return 0


def config_command(action: str, config_path: str) -> int:
    if action == "example":
        sys.stdout.write(EXAMPLE_CONFIG.read_text())
        return 0
    file = open_config(config_path)
    if action == "upgrade":
        added = file.upgrade()
        if added:
            # Written even if something is still to fix: the new keys are needed either way,
            # and what remains (a value, a missing policy folder) is named below.
            file.save()
        print(f"Added {len(added)} key(s): {', '.join(added)}" if added else "The config is up to date.")
        file.settings()
        return 0
    check_environment(file.settings())
    print(f"{config_path} is valid.")
    return 0


def promises_command(config_path: str, markdown: bool, homeserver_config: Path | None, strict: bool) -> int:
    from clutto_bridge.promises import page
    from clutto_bridge.promises.compliance import check, report_lines, weakened

    if markdown:
        sys.stdout.write(page.markdown())
        return 0
    _, settings = load_settings(config_path)
    hs = None
    if homeserver_config is not None:
        hs = read_homeserver_config(homeserver_config)
    verdicts = check(settings, hs)
    print("\n".join(report_lines(verdicts, homeserver_checked=hs is not None)))
    return 1 if strict and weakened(verdicts) else 0


def doctor_command(config_path: str, homeserver_config: Path, fix: bool, registration: Path | None) -> int:
    from clutto_bridge.doctor import DoctorError, doctor, render

    _, settings = load_settings(config_path)
    try:
        report = doctor(settings, homeserver_config, fix=fix, registration=registration)
    except DoctorError as e:
        print(f"clutto-bridge doctor: {e}", file=sys.stderr)
        return EXIT_CONFIG
    render(report)
    return report.exit_code


def read_homeserver_config(path: Path) -> dict:
    from ruamel.yaml.error import YAMLError

    from clutto_bridge.config_upgrade import round_trip_yaml

    try:
        data = round_trip_yaml().load(path.read_text())
    except OSError as e:
        raise ConfigError("--homeserver-config", f"cannot read {path}: {e.strerror}") from None
    except YAMLError:
        raise ConfigError("--homeserver-config", f"{path} is not valid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError("--homeserver-config", f"{path} is not a YAML map")
    return dict(data)


def warn_if_shared(path: Path, why: str) -> None:
    """Files with secrets should be readable by their owner only."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o077:
        logging.getLogger("clutto").warning(
            "%s is readable by group or others (mode %o), but %s: chmod 600 %s", path, mode & 0o777, why, path
        )


def operation(config_path: str, action: str, team: str, *extra: str) -> int:
    from clutto_bridge import operations

    _, settings = load_settings(config_path)
    client = operations.BridgeClient(settings)
    runs: dict[str, Callable[..., Coroutine[Any, Any, int]]] = {
        "preview": operations.retention_preview,
        "sweep": operations.retention_sweep,
        "status": operations.retention_status,
        "plan": operations.set_plan,
    }
    run = runs[action]
    try:
        return asyncio.run(run(client, team, *extra))
    except operations.OperationError as e:
        print(f"clutto-bridge: {e}", file=sys.stderr)
        return 1


def keys_command(config_path: str, action: str, key_id: int | None, batch: int, wait: bool) -> int:
    from clutto_bridge import key_operations as keys

    _, settings = load_settings(config_path)
    try:
        if action == "init":
            return keys.init(settings)
        if action == "rotate":
            if batch < 1:
                raise keys.KeysError("--batch must be at least 1")
            return keys.rotate(settings, batch, wait)
        if action == "status":
            return keys.status(settings)
        if key_id is None:
            raise keys.KeysError("name the key to retire: clutto-bridge keys retire ID (see keys status)")
        return keys.retire(settings, key_id)
    except keys.KeysError as e:
        print(f"clutto-bridge: {e}", file=sys.stderr)
        return 1


def health(config_path: str, timeout: float) -> int:
    from clutto_bridge import operations

    _, settings = load_settings(config_path)
    try:
        return asyncio.run(operations.health(settings, timeout))
    except operations.OperationError as e:
        print(f"clutto-bridge: {e}", file=sys.stderr)
        return 1


def report(config_path: str, which: str) -> int:
    from clutto_bridge import operations

    _, settings = load_settings(config_path)
    try:
        return asyncio.run(operations.usage_report(operations.BridgeClient(settings)))
    except operations.OperationError as e:
        print(f"clutto-bridge: {e}", file=sys.stderr)
        return 1


def audit_command(args: argparse.Namespace, config_path: str) -> int:
    from clutto_bridge import audit_tool

    trusted = audit_tool.trusted_keys(getattr(args, "trusted_keys", None))
    if args.audit_command == "verify" and args.file is not None:
        return audit_tool.verify_file(args.file, trusted, args.witness)
    _, settings = load_settings(config_path)
    if args.audit_command == "verify":
        return asyncio.run(audit_tool.verify_database(settings, trusted, args.witness))
    return asyncio.run(audit_tool.export_database(settings, args.file))


def run(config_path: str, debug: bool = False, worker: bool = False) -> int:
    _, settings = load_settings(config_path)
    if worker and not settings.appservice.database.startswith(("postgres://", "postgresql://")):
        raise ConfigError("appservice.database", "a worker shares the job queue with the main process: use PostgreSQL")
    for key in ("as_token", "hs_token"):
        if getattr(settings.appservice, key) == GENERATE:
            raise ConfigError(f"appservice.{key}", "is still 'generate': run clutto-bridge generate-registration first")
    if settings.provisioning.enabled and settings.provisioning.shared_secret == GENERATE:
        raise ConfigError(
            "provisioning.shared_secret", "is still 'generate': run clutto-bridge generate-registration first"
        )
    if settings.antispam.enabled and settings.antispam.shared_secret == GENERATE:
        raise ConfigError(
            "antispam.shared_secret", "is still 'generate': run clutto-bridge generate-registration first"
        )
    if settings.analytics.metrics_enabled and settings.analytics.metrics_secret == GENERATE:
        raise ConfigError(
            "analytics.metrics_secret", "is still 'generate': run clutto-bridge generate-registration first"
        )
    check_environment(settings)  # after the tokens: generate-registration also creates the keys
    warn_if_shared(Path(config_path), "it holds the appservice tokens and the provisioning secret")
    setup_logging(settings.logging.level, settings.logging.file)
    return asyncio.run(serve(settings, debug, worker))


async def serve(settings: Settings, debug: bool = False, worker: bool = False) -> int:
    """Run until SIGINT or SIGTERM, then stop cleanly."""
    from clutto_bridge import testhooks
    from clutto_bridge.app import Bridge
    from clutto_bridge.watchdog import Watchdog

    log = logging.getLogger("clutto")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bridge = Bridge(settings)
    try:
        await (bridge.start_worker() if worker else bridge.start())
    except ConfigError:
        # The database, the port or the homeserver named in the config cannot be used:
        # one line naming the key (main() prints it), the traceback only with --debug.
        if debug:  # at ERROR: the configured log level (INFO by default) must not hide what was asked for
            log.exception("Start-up failure")
        await _quietly(bridge.stop(grace=0))
        raise
    except Exception as e:
        log.error("Could not start: %s", _reason(e), exc_info=debug)
        await _quietly(bridge.stop(grace=0))
        return 1
    watchdog = Watchdog(bridge.answers)
    watchdog.start()  # READY=1, then WATCHDOG=1 pings under systemd; nothing otherwise
    testhooks.block_loop_on_signal(loop)
    await stop.wait()
    log.info("Stopping on signal")
    await watchdog.stop()
    await bridge.stop()
    return 0


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


async def _quietly(coro: Awaitable[object]) -> None:
    try:
        await coro
    except Exception:
        pass
