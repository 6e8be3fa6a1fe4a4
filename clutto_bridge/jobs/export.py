"""Export a team's data: messages as JSON lines per room, media files, members and
profiles, and a manifest with the SHA-256 of every file.

Team data must not be readable by other users of the host: folders are made 0700 and
files 0600, like the database, whatever the process's umask.

Rooms are read page by page and written to a temporary file that is renamed when the
room is complete, so a resumed export redoes at most one room and memory stays bounded.

Encrypted rooms (P12): the homeserver holds ``m.room.encrypted`` events. Each is decrypted
with the bot's Megolm keys, which it has for everything sent while it was in the room, and
written as its sender wrote it (decrypted type and content) with ``"decrypted": true``. One
the bot has no key for is written as the homeserver holds it, ciphertext and all, with
``"decrypted": false``, never as content; the manifest counts those and lists their event
ids (``undecryptable``), and keeping them lets someone who holds the key read them later.
Encrypted attachments are decrypted with the key in their decrypted event while the room is
written (the key never goes into the job's checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import InitVar, asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from clutto_bridge.clock import Clock
from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.team import RoomStore, Team, TeamStore
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.lifecycle import TrialLifecycle, archive_name, export_number, safe_file_name
from clutto_bridge.domain.webhooks import WebhookEvents
from clutto_bridge.jobs.ratelimit import RateLimiter
from clutto_bridge.jobs.runner import JobContext
from clutto_bridge.matrix.errors import MatrixRequestError, UnreadableAttachment
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.retention import encrypted_files, media_urls

log = logging.getLogger("clutto.export")

PAGE = 200
ENCRYPTED = "m.room.encrypted"
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
    undecryptable: list[str] = field(default_factory=list)
    archive: str | None = None
    """The file name of the zip of the whole export, in its folder."""


@dataclass
class RoomExport:
    """What writing one room found: its events, the plain media they refer to, and the ids of
    the encrypted events the bot could not decrypt."""

    events: int = 0
    media: set[str] = field(default_factory=set)
    undecryptable: list[str] = field(default_factory=list)


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


def _write_archive(folder: Path, name: str) -> Path:
    """One zip of the export (the files its manifest lists, and the manifest), in its folder,
    to download or send in one piece; written whole before it is named."""
    manifest = json.loads((folder / "manifest.json").read_text())
    target = folder / name
    partial = target.with_name(name + ".partial")
    with private_file(partial, "wb") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in manifest["files"]:
            archive.write(folder / entry["path"], entry["path"])
        archive.write(folder / "manifest.json", "manifest.json")
    os.replace(partial, target)
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(kw_only=True, eq=False, repr=False)
class TeamExport:
    teams: TeamStore
    rooms: RoomStore
    members: MemberStore
    homeserver: Homeserver
    audit: AuditLog
    lifecycle: TrialLifecycle
    clock: Clock
    events: WebhookEvents | None = None
    homeserver_rate: InitVar[int]

    def __post_init__(self, homeserver_rate: int) -> None:
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
            room = await self._export_room(folder, p.rooms[p.room_index])
            p.room_index += 1
            p.events += room.events
            p.media = sorted(set(p.media) | room.media)
            p.undecryptable += room.undecryptable
            await ctx.checkpoint(**asdict(p))
        for mxc in p.media:
            await self._export_media(folder, mxc)
        await self._export_members(folder, team)
        number = export_number(ctx.job)
        manifest = self._write_manifest(folder, team, p.events, p.undecryptable)
        archive = _write_archive(folder, archive_name(team.id, number))
        p.manifest, p.files = str(manifest), len(json.loads(manifest.read_text())["files"])
        p.archive = archive.name
        await ctx.checkpoint(**asdict(p))
        # The audit log names the export by its number, never by a path on the bridge's host.
        await self.audit.record(
            team,
            ctx.job.payload.get("requested_by"),
            AuditAction.EXPORT_CREATED,
            f"export #{number}",
            job=ctx.job.id,
            events=p.events,
            media=len(p.media),
            undecryptable=len(p.undecryptable),
        )
        if self.events is not None:
            await self.events.emit(
                "export.ready", team.id, {"job_id": ctx.job.id, "files": p.files, "events": p.events}
            )
        try:
            await self.lifecycle.export_ready(team, ctx.job, archive, events=p.events, files=p.files)
        except Exception:  # the export is made and in the portal; the chat only misses the news
            log.exception("Could not tell the chat that export %s of %s is ready", ctx.job.id, team.id)

    async def _export_room(self, folder: Path, room_id: str) -> RoomExport:
        target = folder / "rooms" / f"{safe_file_name(room_id)}.jsonl"
        partial = target.with_suffix(".jsonl.partial")
        room, token = RoomExport(), None
        with private_file(partial) as out:
            while True:
                await self.limiter.acquire()
                events, token = await self.homeserver.page_forward(room_id, token, PAGE)
                for event in events:
                    event = await self._readable(event, room)
                    out.write(json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n")
                    room.media |= await self._files_of(folder, event.get("content"))
                room.events += len(events)
                if token is None:
                    break
        os.replace(partial, target)
        return room

    async def _readable(self, event: dict[str, Any], room: RoomExport) -> dict[str, Any]:
        """The event to write: an encrypted one decrypted, or kept as ciphertext, marked and
        counted; any other event as it is (a redacted encrypted event holds nothing to decrypt)."""
        content = event.get("content")
        if event.get("type") != ENCRYPTED or not isinstance(content, dict) or "ciphertext" not in content:
            return event
        decrypted = await self.homeserver.decrypted(event)
        if decrypted is None:
            room.undecryptable.append(event.get("event_id", ""))
            return {**event, "decrypted": False}
        return {**decrypted, "decrypted": True}

    async def _files_of(self, folder: Path, content: Any) -> set[str]:
        """The plain media an event refers to, to export later; its encrypted attachments are
        exported now, decrypted with the key beside them (their ciphertext is not exported)."""
        if not isinstance(content, dict):
            return set()
        files = encrypted_files(content)
        for file in files:
            await self._export_encrypted_media(folder, file)
        return media_urls(content) - {f["url"] for f in files}

    async def _export_media(self, folder: Path, mxc: str) -> None:
        await self._write_media(folder, mxc, mxc)

    async def _export_encrypted_media(self, folder: Path, file: dict[str, Any]) -> None:
        """An encrypted attachment, decrypted, under its mxc's name like any other media."""
        await self._write_media(folder, file["url"], file)

    async def _write_media(self, folder: Path, mxc: str, source: str | dict[str, Any]) -> None:
        target = folder / "media" / safe_file_name(mxc.removeprefix("mxc://"))
        if target.exists():
            return
        await self.limiter.acquire()
        try:
            data = await self.homeserver.download_attachment(source)
        except (MatrixRequestError, UnreadableAttachment) as e:
            log.warning("Media %s could not be exported: %s", mxc, e)
            return
        partial = target.with_name(target.name + ".partial")
        with private_file(partial, "wb") as out:
            out.write(data)
        os.replace(partial, target)

    async def _export_members(self, folder: Path, team: Team) -> None:
        members = []
        for member in await self.members.of_team(team.id):
            entry: dict[str, str | None] = {
                "user_id": member.user_id,
                "role": member.role,
                "membership": member.membership,
            }
            try:
                entry["displayname"], entry["avatar_url"] = await self.homeserver.profile(member.user_id)
            except MatrixRequestError:
                entry["displayname"] = entry["avatar_url"] = None
            members.append(entry)
        with private_file(folder / "members.json") as out:
            out.write(json.dumps(members, indent=2, sort_keys=True))

    def _write_manifest(self, folder: Path, team: Team, events: int, undecryptable: list[str]) -> Path:
        files = []
        for path in sorted(folder.rglob("*")):
            if (
                path.is_file()
                and path.name != "manifest.json"
                and not path.name.endswith(".partial")
                and not (path.parent == folder and path.suffix == ".zip")
            ):  # the archive, made after it
                files.append(
                    {"path": str(path.relative_to(folder)), "bytes": path.stat().st_size, "sha256": sha256_of(path)}
                )
        manifest = {
            "team": {"id": team.id, "name": team.name, "owner": team.owner, "space_id": team.space_id},
            "created_at": self.clock.now_ms(),
            "events": events,
            "files": files,
            # Encrypted events the bot had no key for: in the room files as ciphertext, marked.
            "undecryptable": {"count": len(undecryptable), "event_ids": undecryptable},
        }
        path = folder / "manifest.json"
        with private_file(path) as out:
            out.write(json.dumps(manifest, indent=2, sort_keys=True))
        return path
