"""From a message to the bot's answer: the whole walk of a command, in one place.

``events.py`` hands every message of a member here (``CommandProcessor.handle``) and gets
back nothing but the work to run in the room's lane. Here the message becomes a command (or,
in the chat with the bot, a file becomes a contact import or a profile photo), the command's
declaration is checked, its handler runs, a refusal or failure becomes the reply, and the
outcome is counted. Like mautrix-python's ``CommandProcessor.handle``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypedDict

from mautrix.types import MediaMessageEventContent, MessageEvent, MessageType

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.context import Services
from clutto_bridge.db.team import TeamState
from clutto_bridge.domain.contacts import FileRemoval, ImportNotAllowed, ImportReport
from clutto_bridge.domain.errors import InvalidInput, TeamError
from clutto_bridge.domain.sent_files import SentFile
from clutto_bridge.metrics import Metrics

log = logging.getLogger("clutto.commands")

VCARD_TYPES = ("text/vcard", "text/x-vcard", "text/directory")
# Files sent in the chat with the bot are counted like commands, under these names.
PROFILE_PHOTO, CONTACTS_IMPORT = "profile photo", "contacts import"


def counted_names() -> list[str]:
    """Every name a command run is counted under (the metrics' allowed labels)."""
    return [*registry.commands, PROFILE_PHOTO, CONTACTS_IMPORT]


class _Answering(TypedDict):
    event_id: str
    thread_root: str | None


def _answering(evt: MessageEvent) -> _Answering:
    """What a reply to this message relates to: the message itself, and its thread if it is in one."""
    return {"event_id": evt.event_id, "thread_root": evt.content.get_thread_parent()}


class CommandProcessor:
    """Runs the commands (and files) members send to the bot."""

    def __init__(self, ctx: Services, metrics: Metrics | None = None) -> None:
        self.ctx = ctx
        self.metrics = metrics

    async def handle(self, evt: MessageEvent) -> None:
        if evt.content.msgtype in (MessageType.FILE, MessageType.IMAGE):
            await self._file(evt)
            return
        if evt.content.msgtype not in (MessageType.TEXT, MessageType.NOTICE) or not evt.content.body:
            return
        if evt.content.msgtype == MessageType.NOTICE:
            return  # other bots talk in notices; never answer them
        body = evt.content.body.strip()
        prefix = self.ctx.settings.bridge.command_prefix
        in_management = await self.ctx.notices.chat_owner(evt.room_id) == evt.sender
        words = body.split()
        if words and words[0].lower() == prefix.lower():
            words = words[1:]
        elif not in_management:
            return
        command, args = registry.find(words)
        event = CommandEvent(self.ctx, evt.room_id, evt.sender, args, in_management, **_answering(evt))
        if command is None:
            shown = " ".join(words[:2]) if words else ""
            help_line = "help" if in_management else f"{prefix} help"  # no prefix needed in the chat with the bot
            await event.reply(
                f"Unknown command `{shown}`. Send `{help_line}` for the list."
                if shown
                else f"Send `{help_line}` for the list of commands."
            )
            self._count("unknown", "unknown")
            return
        log.info("%s runs %r in %s", evt.sender, command.name, evt.room_id)
        await self._run(event, command.name, command.handler)

    async def _file(self, evt: MessageEvent) -> None:
        """In a direct chat with the bot, a vCard file is a contact import and an image a profile
        photo. A vCard posted in a team room is not imported; its sender is told in private."""
        content = evt.content
        if not isinstance(content, MediaMessageEventContent):
            return
        info = content.info
        mimetype = (info.mimetype if info else None) or ""
        is_vcard = mimetype in VCARD_TYPES or (content.body or "").lower().endswith(".vcf")
        if await self.ctx.notices.chat_owner(evt.room_id) != evt.sender:
            if is_vcard:
                team = await self.ctx.teams.for_room(evt.room_id)
                if team and team.state == TeamState.ACTIVE:
                    log.info("%s posted a contact file in team room %s; not imported", evt.sender, evt.room_id)
                    await contact_file_in_team_room(self.ctx, evt.sender, team.name, content.body or "")
            return
        event = CommandEvent(self.ctx, evt.room_id, evt.sender, [], True, **_answering(evt))
        # An encrypted attachment has no url, but a ``file`` with its url and key.
        file = content.file.serialize() if content.file else (str(content.url) if content.url else None)
        if content.msgtype == MessageType.IMAGE:
            log.info("%s sends a profile photo in %s", evt.sender, evt.room_id)
            await self._run(event, PROFILE_PHOTO, lambda e: set_photo_from_image(e, file, evt.event_id, mimetype))
        elif is_vcard:
            log.info("%s sends a contact file in %s", evt.sender, evt.room_id)
            await self._run(event, CONTACTS_IMPORT, lambda e: import_contact_file(e, file, evt.event_id))

    def _count(self, command: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.command_run(command, outcome)

    async def _run(self, event: CommandEvent, name: str, handler: Callable[[CommandEvent], Awaitable[None]]) -> None:
        try:
            await handler(event)
        except TeamError as e:
            self._count(name, "refused")
            await event.reply(e.message)
        except Exception:
            self._count(name, "failed")
            log.exception("Command %r from %s failed", name, event.sender)
            await event.reply("Sorry, that failed on our side. The operator can find the details in the bridge log.")
        else:
            self._count(name, "ok")


async def import_contact_file(evt: CommandEvent, file: SentFile | None, event_id: str) -> None:
    """A vCard file sent to the bot (in the clear or encrypted): imported (with permission), then
    removed from the chat and the homeserver either way, and the reply says both."""
    imported = False
    try:
        outcome, imported = await _import_file(evt, file)
    except TeamError as e:
        outcome = e.message
    except Exception:
        log.exception("Importing the contact file %s of %s failed", event_id, evt.sender)
        outcome = "Sorry, importing that file failed on our side."
    removal = await evt.ctx.contacts.remove_file(evt.room_id, event_id, file)
    await evt.reply(f"{outcome}\n{_removal_note(removal, imported)}", listing=True)


async def _import_file(evt: CommandEvent, file: SentFile | None) -> tuple[str, bool]:
    """What the import did, and whether it imported (anything kept, or already there)."""
    if not await evt.ctx.contacts.permitted(evt.sender):
        # Checked before the file is even downloaded.
        return (
            "I did not import that file: contact import needs your permission first. "
            "Send `contacts allow`, then the file again."
        ), False
    data = await evt.ctx.contacts.read_file(file)
    try:
        report = await evt.ctx.contacts.import_vcards(evt.sender, data)
    except ImportNotAllowed:  # revoked while the file was downloading
        return "I did not import that file: contact import is no longer allowed. Send `contacts allow` first.", False
    return _import_summary(report), True


def _import_summary(report: ImportReport) -> str:
    found = ", ".join(report.matched) if report.matched else "none of them"
    text = f"Imported {report.imported} contact(s)"
    if report.already_known:
        text += f" ({report.already_known} card(s) of the file were already there, kept once)"
    text += f". On this homeserver: {found}."
    return text + (" Invite one to your team with `invite USER`." if report.matched else "")


def _removal_note(removal: FileRemoval, imported: bool) -> str:
    """What became of the file; what was kept of it only when something was imported (a refused
    file kept nothing)."""
    if removal.redacted and removal.media_deleted:
        kept = ": only names, email addresses and Matrix IDs are kept" if imported else ""
        return f"I removed the file from this chat and deleted it from the homeserver{kept}."
    if removal.media_deleted:
        return (
            "I deleted the file from the homeserver, but could not remove its message from this chat; "
            "please delete that message yourself."
        )
    if removal.redacted:
        return (
            "I removed the file from this chat, but could not delete it from the homeserver's media store "
            "(the operator can see why in the bridge log)."
        )
    return (
        "I could not remove the file from this chat nor delete it from the homeserver; please delete the "
        "message yourself."
    )


async def contact_file_in_team_room(ctx: Services, sender: str, team_name: str, file_name: str) -> None:
    """A vCard posted in a team room is not imported (contacts come only through the chat with
    the bot); the sender hears so there, and that the whole room can read the file."""
    shown = file_name if len(file_name) <= 60 else file_name[:57] + "…"
    await ctx.notices.tell(
        sender,
        (
            f'You posted the contact file "{shown}" in a room of {team_name}. I did not import it: contacts are '
            "imported only from this chat (after `contacts allow`). Everyone in that room can read the file, with "
            "any phone numbers and addresses in it; delete the message there if it was not meant for them."
        ),
    )


async def set_photo_from_image(evt: CommandEvent, file: SentFile | None, event_id: str, mime_type: str) -> None:
    """An image sent to the bot becomes the profile photo (after the policy's checks): the image
    itself, or, sent encrypted, a copy of it in the clear (profiles are public)."""
    if isinstance(file, dict):
        removal = await evt.ctx.profiles.photo_from_encrypted_image(evt.sender, evt.room_id, event_id, file, mime_type)
        gone = (
            "I removed the encrypted image from this chat."
            if removal.redacted
            else "Please delete the encrypted image from this chat yourself."
        )
        await evt.reply(
            f"Your profile photo is set. Profiles are public, so your teammates see a copy of the image "
            f"that is not end-to-end encrypted. {gone}"
        )
        return
    if not file:
        raise InvalidInput("That image has no content I can read.")
    await evt.ctx.profiles.update(evt.sender, {"photo": file}, actor=evt.sender)
    await evt.reply("Your profile photo is set.")
