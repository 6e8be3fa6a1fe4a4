"""Export a team's data: messages as JSON lines per room, media files, members and
profiles, and a manifest with the SHA-256 of every file.

Team data must not be readable by other users of the host: folders are made 0700 and
files 0600, like the database, whatever the process's umask.

Rooms are read page by page and written to a temporary file that is renamed when the
room is complete, so a resumed export redoes at most one room and memory stays bounded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from dataclasses import asdict, dataclass, field

from clutto_bridge.matrix.errors import MatrixRequestError

from clutto_bridge.clock import Clock
from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.team import RoomStore, Team, TeamStore
from clutto_bridge.jobs.ratelimit import RateLimiter
from clutto_bridge.jobs.runner import JobContext
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.retention import media_urls
from clutto_bridge.teams.audit import AuditLog
from clutto_bridge.teams.webhooks import WebhookEvents
from clutto_bridge.teams.lifecycle import TrialLifecycle, safe_file_name

log = logging.getLogger("clutto.export")

PAGE = 200
FOLDER_MODE = 0o700
FILE_MODE = 0o600


@dataclass
class ExportProgress:
    """An export's checkpoint: which rooms, how far, what media the rooms referenced."""

    path: str
    rooms: list[str]
    room_index: int = 0
    events: int = 0
    media: list[str] = field(default_factory=list)
    manifest: str | None = None
    files: int | None = None



def private_folder(path: Path) -> None:
    """Make ``path`` and the missing folders above it, readable by the bridge's user only
    (an existing folder above, chosen by the operator, keeps its mode)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
    os.chmod(path, FOLDER_MODE)


def private_file(path: Path, mode: str = "w") -> IO[Any]:
    """``path`` opened for writing, readable by the bridge's user only from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # an existing file (a resumed export) keeps no wider mode
    return open(fd, mode)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


class TeamExport:
    def __init__(
        self, teams: TeamStore, rooms: RoomStore, members: MemberStore, homeserver: Homeserver, audit: AuditLog,
        lifecycle: TrialLifecycle, homeserver_rate: int, clock: Clock, events: WebhookEvents | None = None,
    ) -> None:
        self.teams = teams
        self.rooms = rooms
        self.members = members
        self.homeserver = homeserver
        self.audit = audit
        self.lifecycle = lifecycle
        self.clock = clock
        self.events = events
        self.limiter = RateLimiter(homeserver_rate)

    async def __call__(self, ctx: JobContext) -> None:
        team = await self.teams.get(ctx.job.team_id)
        if team is None:
            await ctx.checkpoint(skipped="team is gone")
            return
        folder = self.lifecycle.export_folder(team.id, ctx.job.id)
        for part in (folder, folder / "rooms", folder / "media"):
            private_folder(part)
        if "rooms" in ctx.progress:
            p = ExportProgress(**ctx.progress)
        else:
            rooms = await self.rooms.of_team(team.id, include_archived=True)
            p = ExportProgress(path=str(folder), rooms=[r.room_id for r in rooms])
            await ctx.checkpoint(**asdict(p))
        while p.room_index < len(p.rooms):
            events, media = await self._export_room(folder, p.rooms[p.room_index])
            p.room_index += 1
            p.events += events
            p.media = sorted(set(p.media) | media)
            await ctx.checkpoint(**asdict(p))
        for mxc in p.media:
            await self._export_media(folder, mxc)
        await self._export_members(folder, team)
        manifest = self._write_manifest(folder, team, p.events)
        p.manifest, p.files = str(manifest), len(json.loads(manifest.read_text())["files"])
        await ctx.checkpoint(**asdict(p))
        await self.audit.record(
            team, ctx.job.payload.get("requested_by"), "export_created", str(folder), events=p.events, media=len(p.media),
        )
        if self.events is not None:
            await self.events.emit("export.ready", team.id, {"job_id": ctx.job.id, "files": p.files, "events": p.events})

    async def _export_room(self, folder: Path, room_id: str) -> tuple[int, set[str]]:
        target = folder / "rooms" / f"{safe_file_name(room_id)}.jsonl"
        partial = target.with_suffix(".jsonl.partial")
        count, media, token = 0, set(), None
        with private_file(partial) as out:
            while True:
                await self.limiter.acquire()
                events, token = await self.homeserver.page_forward(room_id, token, PAGE)
                for event in events:
                    out.write(json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n")
                    media |= media_urls(event.get("content") or {})
                count += len(events)
                if token is None:
                    break
        os.replace(partial, target)
        return count, media

    async def _export_media(self, folder: Path, mxc: str) -> None:
        target = folder / "media" / safe_file_name(mxc.removeprefix("mxc://"))
        if target.exists():
            return
        await self.limiter.acquire()
        try:
            data = await self.homeserver.download(mxc)
        except MatrixRequestError as e:
            log.warning("Media %s could not be exported: %s", mxc, e)
            return
        partial = target.with_name(target.name + ".partial")
        with private_file(partial, "wb") as out:
            out.write(data)
        os.replace(partial, target)

    async def _export_members(self, folder: Path, team: Team) -> None:
        members = []
        for member in await self.members.of_team(team.id):
            entry = {"user_id": member.user_id, "role": member.role, "membership": member.membership}
            try:
                entry["displayname"], entry["avatar_url"] = await self.homeserver.profile(member.user_id)
            except MatrixRequestError:
                entry["displayname"] = entry["avatar_url"] = None
            members.append(entry)
        with private_file(folder / "members.json") as out:
            out.write(json.dumps(members, indent=2, sort_keys=True))

    def _write_manifest(self, folder: Path, team: Team, events: int) -> Path:
        files = []
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name != "manifest.json" and not path.name.endswith(".partial"):
                files.append({"path": str(path.relative_to(folder)), "bytes": path.stat().st_size, "sha256": sha256_of(path)})
        manifest = {
            "team": {"id": team.id, "name": team.name, "owner": team.owner, "space_id": team.space_id},
            "created_at": self.clock.now_ms(),
            "events": events,
            "files": files,
        }
        path = folder / "manifest.json"
        with private_file(path) as out:
            out.write(json.dumps(manifest, indent=2, sort_keys=True))
        return path
