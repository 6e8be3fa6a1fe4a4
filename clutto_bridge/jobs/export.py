"""Export a team's data: messages as JSON lines per room, media files, members and
profiles, and a manifest with the SHA-256 of every file.

Rooms are read page by page and written to a temporary file that is renamed when the
room is complete, so a resumed export redoes at most one room and memory stays bounded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from mautrix.errors import MatrixRequestError

from clutto_bridge.db.member import Member
from clutto_bridge.db.team import Team, TeamRoom
from clutto_bridge.jobs.ratelimit import RateLimiter
from clutto_bridge.jobs.runner import JobContext
from clutto_bridge.matrix import history
from clutto_bridge.policy.retention import media_urls
from clutto_bridge.teams.members import MemberService

log = logging.getLogger("clutto.export")

EXPORT = "export"
PAGE = 200


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


class TeamExport:
    def __init__(self, members: MemberService) -> None:
        self.members = members
        self.db = members.db
        self.settings = members.settings
        self.clock = members.clock
        self.limiter = RateLimiter(self.settings.jobs.homeserver_rate)

    @property
    def bot(self):
        return self.members.teams.bot

    def folder_for(self, team_id: str, job_id: int) -> Path:
        return Path(self.settings.export.directory).resolve() / f"{_safe_name(team_id)}-{job_id}"

    async def __call__(self, ctx: JobContext) -> None:
        team = await Team.get(self.db, ctx.job.team_id)
        if team is None:
            await ctx.checkpoint(skipped="team is gone")
            return
        folder = self.folder_for(team.id, ctx.job.id)
        (folder / "rooms").mkdir(parents=True, exist_ok=True)
        (folder / "media").mkdir(exist_ok=True)
        if "rooms" not in ctx.progress:
            rooms = await TeamRoom.of_team(self.db, team.id, include_archived=True)
            await ctx.checkpoint(path=str(folder), rooms=[r.room_id for r in rooms], room_index=0, events=0, media=[])
        while ctx.progress["room_index"] < len(ctx.progress["rooms"]):
            room_id = ctx.progress["rooms"][ctx.progress["room_index"]]
            events, media = await self._export_room(folder, room_id)
            await ctx.checkpoint(
                room_index=ctx.progress["room_index"] + 1,
                events=ctx.progress["events"] + events,
                media=sorted(set(ctx.progress["media"]) | media),
            )
        for mxc in ctx.progress["media"]:
            await self._export_media(folder, mxc)
        await self._export_members(folder, team)
        manifest = self._write_manifest(folder, team, ctx.progress["events"])
        await ctx.checkpoint(manifest=str(manifest), files=len(json.loads(manifest.read_text())["files"]))
        await self.members.record(
            team, ctx.job.payload.get("requested_by"), "export_created", str(folder),
            events=ctx.progress["events"], media=len(ctx.progress["media"]),
        )

    async def _export_room(self, folder: Path, room_id: str) -> tuple[int, set[str]]:
        target = folder / "rooms" / f"{_safe_name(room_id)}.jsonl"
        partial = target.with_suffix(".jsonl.partial")
        count, media, token = 0, set(), None
        with open(partial, "w") as out:
            while True:
                await self.limiter.acquire()
                events, token = await history.page_forward(self.bot, room_id, token, PAGE)
                for event in events:
                    out.write(json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n")
                    media |= media_urls(event.get("content") or {})
                count += len(events)
                if token is None:
                    break
        os.replace(partial, target)
        return count, media

    async def _export_media(self, folder: Path, mxc: str) -> None:
        target = folder / "media" / _safe_name(mxc.removeprefix("mxc://"))
        if target.exists():
            return
        await self.limiter.acquire()
        try:
            data = await self.bot.download_media(mxc)
        except MatrixRequestError as e:
            log.warning("Media %s could not be exported: %s", mxc, e)
            return
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, target)

    async def _export_members(self, folder: Path, team: Team) -> None:
        members = []
        for member in await Member.of_team(self.db, team.id):
            entry = {"user_id": member.user_id, "role": member.role, "membership": member.membership}
            try:
                profile = await self.bot.get_profile(member.user_id)
                entry["displayname"] = profile.displayname
                entry["avatar_url"] = profile.avatar_url
            except MatrixRequestError:
                entry["displayname"] = entry["avatar_url"] = None
            members.append(entry)
        (folder / "members.json").write_text(json.dumps(members, indent=2, sort_keys=True))

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
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return path
