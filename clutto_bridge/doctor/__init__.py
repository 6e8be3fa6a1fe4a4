"""``clutto-bridge doctor``: the homeserver's own settings audited against the bridge's policy
(and, with ``--fix``, corrected in its files). The checks are pure (``checks.py``); this
module reads the files, asks the homeserver, prints the table and writes the fixes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clutto_bridge.config import Settings
from clutto_bridge.doctor.checks import HOMESERVER, LOG_CONFIG, Facts, Requirements, Result, Status, failed, run_checks
from clutto_bridge.doctor.files import DoctorError, YamlFile, resolve
from clutto_bridge.matrix.probe import bot_admin_status
from clutto_bridge.policy.collection import is_loopback
from clutto_bridge.web.antispam import antispam_findings

__all__ = ["DoctorError", "Report", "doctor", "render"]


@dataclass
class Report:
    results: list[Result]
    changed: list[str] = field(default_factory=list)  # what --fix wrote, one line each
    backups: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if failed(self.results) else 0


def requirements(settings: Settings, registration: Path | None = None) -> Requirements:
    a = settings.appservice
    return Requirements(
        ip_mode=settings.collection.ip,
        collection_retention_s=settings.collection.retention,
        shortest_lifetime_s=settings.retention.min,
        longest_lifetime_s=settings.retention.max,
        as_token=settings.appservice.as_token,
        registration_file=str(registration.absolute()) if registration else None,
        bridge_plain_http_on=None if a.tls.enabled or is_loopback(a.hostname) else a.hostname,
        module_findings=(
            lambda homeserver: [(f.severity, f.message) for f in antispam_findings(dict(homeserver), settings)]
        )
        if settings.antispam.enabled
        else None,
    )


def read_facts(
    homeserver: YamlFile, log_config: YamlFile | None, log_problem: str | None, bot_admin: tuple[bool | None, str]
) -> Facts:
    registrations: dict[str, Any] = {}
    for listed in homeserver.data.get("app_service_config_files") or []:
        try:
            registrations[str(listed)] = YamlFile.load(resolve(listed, homeserver.path)).data
        except DoctorError:
            registrations[str(listed)] = None
    return Facts(
        homeserver=homeserver.data,
        log_config=log_config.data if log_config else None,
        log_problem=log_problem,
        registrations=registrations,
        bot_admin=bot_admin[0],
        bot_admin_detail=bot_admin[1],
    )


def _log_config(homeserver: YamlFile) -> tuple[YamlFile | None, str | None]:
    path = homeserver.data.get("log_config")
    if not path:
        return None, None
    try:
        return YamlFile.load(resolve(path, homeserver.path)), None
    except DoctorError as e:
        return None, str(e)


def doctor(
    settings: Settings,
    homeserver_config: Path,
    fix: bool = False,
    registration: Path | None = None,
    ask_homeserver: bool = True,
) -> Report:
    """Check (and with ``fix``, correct and check again) the homeserver's config files."""
    homeserver = YamlFile.load(homeserver_config)
    log_config, log_problem = _log_config(homeserver)
    req = requirements(settings, registration)
    admin = _ask_bot_admin(settings) if ask_homeserver else (None, "not checked: the homeserver was not asked")
    results = run_checks(read_facts(homeserver, log_config, log_problem, admin), req)
    if not fix:
        return Report(results)
    files: dict[str, YamlFile | None] = {HOMESERVER: homeserver, LOG_CONFIG: log_config}
    touched: dict[str, YamlFile] = {}
    changes: list[tuple[str, str]] = []
    for result in results:
        for change in result.fixes:
            target = files[change.file]
            if target is None:
                continue
            target.apply(change)
            touched[change.file] = target
            changes.append((change.file, f"{target.path}: {change.describe().split(': ', 1)[1]}"))
    # Only files whose text changes are written, each after a backup.
    backups = {name: file.save_with_backup() for name, file in touched.items()}
    report = doctor(settings, homeserver_config, fix=False, registration=registration, ask_homeserver=ask_homeserver)
    report.changed = [line for name, line in changes if backups[name] is not None]
    report.backups = [backup for backup in backups.values() if backup is not None]
    return report


def _ask_bot_admin(settings: Settings) -> tuple[bool | None, str]:
    return asyncio.run(bot_admin_status(settings.homeserver.address, settings.appservice.as_token, settings.bot_mxid))


def render(report: Report, out: Callable[[str], None] = print) -> None:
    """The table (check, status, found, required; why below each), then what --fix changed."""
    rows = [("check", "status", "found", "required")]
    rows += [(r.check, r.status.value, r.found, r.required) for r in report.results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    whys = ["", *(r.why for r in report.results)]
    for row, why in zip(rows, whys):
        out("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
        if why:
            out(f"    why: {why}")
    if report.changed:
        out("")
        out("Changed (backups: " + ", ".join(str(b) for b in report.backups) + "):")
        for line in report.changed:
            out(f"  {line}")
        out("Restart the homeserver for the changes to take effect.")
    counts = {s: sum(r.status is s for r in report.results) for s in Status}
    out("")
    hint = ". Run again with --fix to correct what fails." if report.exit_code and not report.changed else "."
    out(", ".join(f"{n} {s.value}" for s, n in counts.items() if n) + hint)
