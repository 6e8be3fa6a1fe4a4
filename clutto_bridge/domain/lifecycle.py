"""The trial lifecycle: warn the owner before the purge, export first if asked, then purge.

A team on the ``trial`` plan is purged when its grace period ends (``purge_after``). The
purge itself is a durable job (``jobs/team_purge.py``); this module decides when: warnings
first, a legal hold blocks the purge, and a team whose export setting asks for it is
exported first.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clutto_bridge.clock import Clock
from clutto_bridge.config import TrialSettings
from clutto_bridge.db.job import Job, JobKind, JobStore
from clutto_bridge.db.team import Team, TeamStore
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import InvalidInput, NotAllowed
from clutto_bridge.domain.formatting import prose
from clutto_bridge.domain.notices import NoticeService
from clutto_bridge.domain.queue import JobQueue
from clutto_bridge.domain.retention import RetentionService
from clutto_bridge.domain.service import TeamService
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.trial import PLANS, due_warnings, purge_due

log = logging.getLogger("clutto.lifecycle")


def safe_file_name(text: str) -> str:
    """``text`` as one file name: letters, digits and - _ . kept, anything else an underscore."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


# An export's archive up to this size is also sent in the chat it was asked for in.
CHAT_FILE_LIMIT = 2 * 1024 * 1024


def export_number(job: Job) -> int:
    """The export's number in its team (1 for the team's first)."""
    return int(job.payload.get("number") or job.id)


def archive_name(team_id: str, number: int) -> str:
    """The file name of an export's archive (a zip of everything its manifest lists, and the manifest)."""
    return f"clutto-{safe_file_name(team_id)}-export-{number}.zip"


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} kB"


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


@dataclass(kw_only=True, eq=False, repr=False)
class TrialLifecycle:
    teams: TeamService
    store: TeamStore
    retention: RetentionService
    jobs: JobStore
    queue: JobQueue
    notices: NoticeService  # warnings are service notices: they reach the owner whatever the marketing choice
    homeserver: Homeserver
    audit: AuditLog
    trial: TrialSettings
    export_directory: str
    clock: Clock
    portal_url: str | None = None  # where exports are downloaded; None when the portal is off

    async def set_plan(self, team: Team, plan: str, *, actor: str | None) -> None:
        if actor is not None:
            raise NotAllowed("The plan is set by the operator.")
        if plan not in PLANS:
            raise InvalidInput(f"Unknown plan {plan!r}; plans are {', '.join(PLANS)}.")
        old = team.plan
        await self.store.set_plan(team, plan)
        await self.audit.record(team, actor, AuditAction.PLAN_SET, team.id, old=old, new=plan)

    async def set_export_before_purge(self, team: Team, enabled: bool, *, actor: str | None) -> None:
        await self.teams.require_manager(team, actor)
        await self.store.set_export_before_purge(team, enabled)
        await self.audit.record(team, actor, AuditAction.EXPORT_SETTING, team.id, before_purge=enabled)

    async def request_export(
        self, team: Team, *, actor: str | None, answer: dict[str, str | None] | None = None
    ) -> Job:
        """Queue an export. ``answer`` (``room_id``, ``event_id``, ``thread_root``): the command
        that asked, which hears where to get the export when it is ready."""
        await self.teams.require_manager(team, actor)
        job = await self._export(team, {"requested_by": actor, **({"answer": answer} if answer else {})})
        await self.audit.record(
            team, actor, AuditAction.EXPORT_REQUESTED, team.id, job=job.id, number=export_number(job)
        )
        return job

    async def _export(self, team: Team, payload: dict) -> Job:
        """An export of the team, numbered: the one already queued or running, else a new one
        with the team's next number."""
        if await self.jobs.active(JobKind.EXPORT, team.id) is None:
            payload = {**payload, "number": await self.store.next_export_number(team.id)}
        return await self.queue.enqueue(JobKind.EXPORT, team.id, payload)

    async def export_ready(self, team: Team, job: Job, archive: Path, *, events: int, files: int) -> None:
        """Tell the member who asked in a chat where to get the finished export: a portal link,
        and the archive itself when it is small and the chat is encrypted. Only in their direct chat with the bot (the
        whole team's data is not for every member of a team room): as a reply to the command
        when it was sent there. Never a path on the bridge's host."""
        answer, requester = job.payload.get("answer"), job.payload.get("requested_by")
        if not answer or not requester:
            return
        number, size = export_number(job), archive.stat().st_size
        lines = [f"Export #{number} of **{team.name}** is ready: {events} events, {files} files, {_size(size)}."]
        if self.portal_url:
            lines.append(
                f"Download it in the portal (`portal` sends you a sign-in link): "
                f"{self.portal_url}/teams/{team.id}/exports/{job.id}/{archive.name}"
            )
        else:
            lines.append("The portal is switched off on this server: ask your operator for the export.")
        room_id, reply_to, thread = answer["room_id"], answer.get("event_id"), answer.get("thread_root")
        if await self.notices.chat_owner(room_id) != requester:
            room_id, reply_to, thread = await self.notices.direct_room(requester), None, None
        # Only into an encrypted chat: in a plaintext one the whole team's messages would lie
        # readable in the homeserver's media store, where no retention reaches them.
        attach = size <= CHAT_FILE_LIMIT and await self.homeserver.is_encrypted(room_id)
        if attach:
            lines.append("Here it is as a file too, encrypted like this chat.")
        elif size > CHAT_FILE_LIMIT:
            lines.append(f"It is larger than {_size(CHAT_FILE_LIMIT)}, so I do not send it here.")
        else:
            lines.append("This chat is not encrypted, so I do not send the file here.")
        # Sent again when the job is (a repeated send under the same transaction id is one message).
        txn = (
            "clutto.export." + hashlib.sha256(f"{team.id}/{job.id}/{answer.get('event_id')}".encode()).hexdigest()[:32]
        )
        message = prose("\n".join(lines))
        await self.homeserver.send_notice(
            room_id,
            message.plain,
            message.html,
            mentions=[requester],
            reply_to=reply_to,
            thread_root=thread,
            txn_id=txn + ".ready",
        )
        if attach:
            await self.homeserver.send_file(
                room_id,
                archive.read_bytes(),
                name=archive.name,
                mime_type="application/zip",
                reply_to=reply_to,
                thread_root=thread,
                txn_id=txn + ".file",
            )

    def export_folder(self, team_id: str, job_id: int) -> Path:
        """Where export ``job_id`` of the team is written (and downloaded from)."""
        return Path(self.export_directory).resolve() / f"{safe_file_name(team_id)}-{job_id}"

    async def downloaded(self, team: Team, relative_path: str, *, actor: str | None) -> None:
        """Every download of an export file is a disclosure, so it is recorded."""
        await self.audit.record(team, actor, AuditAction.EXPORT_DOWNLOADED, relative_path)

    async def exports(self, team: Team, *, actor: str | None) -> list[Job]:
        """The team's latest exports, newest first (for its owner and admins)."""
        await self.teams.require_manager(team, actor)
        return await self.jobs.latest(team.id, JobKind.EXPORT)

    async def last_export(self, team: Team) -> Job | None:
        return await self.jobs.last_done(JobKind.EXPORT, team.id)

    async def check(self) -> None:
        """Warn owners whose trial purge approaches; start the purge of teams past it."""
        now = self.clock.now_ms()
        for team in await self.teams.active():
            sent = {w for w in team.warnings_sent.split(",") if w}
            due = due_warnings(now, team.plan, team.purge_after, self.trial.warnings, sent)
            if due:
                await self._warn(team, due[-1])
                await self.store.set_warnings_sent(team, ",".join(sorted(sent | set(due))))
            if not purge_due(now, team.plan, team.purge_after):
                continue
            if await self.retention.holds(team):
                await self.audit.once(team, AuditAction.PURGE_BLOCKED_BY_HOLD, team.id)
                continue
            if team.export_before_purge and await self.last_export(team) is None:
                await self._export(team, {"requested_by": None, "reason": "before purge"})
                continue
            await self.queue.enqueue(JobKind.PURGE, team.id, {})

    async def _warn(self, team: Team, before: str) -> None:
        export = " An export of the team's data is made first." if team.export_before_purge else ""
        text = (
            f"Your team **{team.name}** is on a trial that ended on {_day(team.trial_ends_at)}. "
            f"On {_day(team.purge_after)} (in {before}) the team and all its data will be purged "
            f"irreversibly unless its plan is upgraded.{export}"
        )
        await self.notices.tell(team.owner, text)
        await self.audit.record(team, None, AuditAction.TRIAL_WARNING, team.owner, before=before)
