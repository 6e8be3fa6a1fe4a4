"""A member's own things: profile, policy consent, contact import, own data."""

from __future__ import annotations

import json
import logging

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.context import Services
from clutto_bridge.teams import validation
from clutto_bridge.teams.contacts import AlreadyAllowed, FileRemoval, ImportNotAllowed, ImportReport
from clutto_bridge.teams.errors import Conflict, InvalidInput, TeamError
from clutto_bridge.teams.sent_files import SentFile
from clutto_bridge.teams.formatting import document, prose

log = logging.getLogger("clutto.commands")

SECTION = "Profile and privacy"


def _format_profile(profile: dict[str, str | None]) -> str:
    return "\n".join(f"{field}: {value or '(not set)'}" for field, value in profile.items())


@registry.command(
    "profile show",
    args="[USER]",
    discloses=True,
    help_text="Show your profile, or a teammate's.",
    section=SECTION,
    example="profile show @bob:example.org",
)
async def profile_show(evt: CommandEvent) -> None:
    user_id = validation.user_id(evt.args[0]) if evt.args else evt.sender
    profile = await evt.ctx.profiles.shown(user_id, evt.sender)
    lines = [f"**Profile of {user_id}**", _format_profile(profile)]
    if user_id == evt.sender:
        missing = await evt.ctx.profiles.missing(user_id)
        if missing:
            lines.append(f"Required and missing: {', '.join(missing)}.")
    await evt.reply("\n".join(lines))


@registry.command(
    "profile set",
    args="FIELD VALUE...",
    help_text="Set a profile field: first_name, last_name, designation, or photo (an mxc:// URI, "
    "or send an image in this chat).",
    section=SECTION,
    example="profile set designation Product designer",
)
async def profile_set(evt: CommandEvent) -> None:
    field, value = evt.args[0], " ".join(evt.args[1:])
    profile = await evt.ctx.profiles.update(evt.sender, {field: value}, actor=evt.sender)
    await evt.reply(f"Profile updated.\n{_format_profile(profile)}")


@registry.command(
    "profile unset",
    args="FIELD",
    help_text="Remove an optional profile field.",
    section=SECTION,
    example="profile unset designation",
)
async def profile_unset(evt: CommandEvent) -> None:
    profile = await evt.ctx.profiles.update(evt.sender, {evt.args[0]: None}, actor=evt.sender)
    await evt.reply(f"Profile updated.\n{_format_profile(profile)}")


@registry.command("policy", help_text="Read the current privacy policy.", section=SECTION)
async def policy(evt: CommandEvent) -> None:
    text = evt.ctx.consent.current
    accepted = await evt.ctx.consent.has_consented(evt.sender)
    status = "You have accepted it." if accepted else "Send `accept` to agree to it."
    await evt.reply(
        prose(f"**Privacy policy, version {text.version}** (published {text.published.isoformat()})")
        + document(text.text) + prose(status)
    )


@registry.command(
    "accept",
    args="[VERSION]",
    help_text="Agree to the current privacy policy.",
    section=SECTION,
    example="accept",
)
async def accept(evt: CommandEvent) -> None:
    text = await evt.ctx.onboarding.accept(evt.sender, evt.args[0] if evt.args else None)
    extra = " You can send in your teams' rooms again." if evt.ctx.onboarding.blocking else ""
    await evt.reply(f"Thank you: you accepted privacy policy version {text.version}.{extra}")


@registry.command(
    "contacts allow", private=True, help_text="Allow importing your contacts (a vCard file).", section=SECTION
)
async def contacts_allow(evt: CommandEvent) -> None:
    try:
        await evt.ctx.contacts.allow(evt.sender)
    except AlreadyAllowed as e:
        raise Conflict(f"{e.message} `contacts revoke` withdraws it.") from None
    await evt.reply("Contact import is allowed. Send a vCard (.vcf) file in this chat, or upload it through the "
                    "API. We keep names, email addresses and Matrix IDs only, and delete the file itself once it "
                    "is read. `contacts revoke` deletes them all.")


@registry.command(
    "contacts revoke", private=True, help_text="Withdraw contact import and delete imported contacts.",
    section=SECTION,
)
async def contacts_revoke(evt: CommandEvent) -> None:
    deleted = await evt.ctx.contacts.revoke(evt.sender)
    await evt.reply(f"Contact import is no longer allowed; {deleted} imported contact(s) deleted.")


@registry.command("contacts list", private=True, help_text="List the contacts you imported.", section=SECTION)
async def contacts_list(evt: CommandEvent) -> None:
    contacts = await evt.ctx.contacts.list(evt.sender)
    if not contacts:
        await evt.reply("You have no imported contacts.")
        return
    lines = [f"**{len(contacts)} imported contact(s)**"]
    for c in contacts[:50]:
        who = c["name"] or ", ".join(c["emails"]) or ", ".join(c["matrix_ids"])
        lines.append(f"{who}" + (f": on this server as {c['matched']}" if c["matched"] else ""))
    if len(contacts) > 50:
        lines.append(f"… and {len(contacts) - 50} more (`mydata export` has them all).")
    await evt.reply("\n".join(lines), listing=True)


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
        return ("I did not import that file: contact import needs your permission first. "
                "Send `contacts allow`, then the file again."), False
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
        return ("I deleted the file from the homeserver, but could not remove its message from this chat; "
                "please delete that message yourself.")
    if removal.redacted:
        return ("I removed the file from this chat, but could not delete it from the homeserver's media store "
                "(the operator can see why in the bridge log).")
    return ("I could not remove the file from this chat nor delete it from the homeserver; please delete the "
            "message yourself.")


async def contact_file_in_team_room(ctx: Services, sender: str, team_name: str, file_name: str) -> None:
    """A vCard posted in a team room is not imported (contacts come only through the chat with
    the bot); the sender hears so there, and that the whole room can read the file."""
    shown = file_name if len(file_name) <= 60 else file_name[:57] + "…"
    await ctx.notices.tell(sender, (
        f"You posted the contact file \"{shown}\" in a room of {team_name}. I did not import it: contacts are "
        "imported only from this chat (after `contacts allow`). Everyone in that room can read the file, with "
        "any phone numbers and addresses in it; delete the message there if it was not meant for them."
    ))


async def set_photo_from_image(evt: CommandEvent, file: SentFile | None, event_id: str, mime_type: str) -> None:
    """An image sent to the bot becomes the profile photo (after the policy's checks): the image
    itself, or, sent encrypted, a copy of it in the clear (profiles are public)."""
    if isinstance(file, dict):
        removal = await evt.ctx.profiles.photo_from_encrypted_image(evt.sender, evt.room_id, event_id, file, mime_type)
        gone = "I removed the encrypted image from this chat." if removal.redacted else \
            "Please delete the encrypted image from this chat yourself."
        await evt.reply(f"Your profile photo is set. Profiles are public, so your teammates see a copy of the image "
                        f"that is not end-to-end encrypted. {gone}")
        return
    if not file:
        raise InvalidInput("That image has no content I can read.")
    await evt.ctx.profiles.update(evt.sender, {"photo": file}, actor=evt.sender)
    await evt.reply("Your profile photo is set.")


@registry.command(
    "mydata",
    private=True,
    help_text="What Clutto stores about you.",
    section=SECTION,
)
async def mydata(evt: CommandEvent) -> None:
    data = await evt.ctx.mydata.collect(evt.sender, reader=evt.sender)
    await evt.reply(evt.ctx.mydata.summary(data))


@registry.command(
    "mydata export",
    private=True,
    help_text="All Clutto stores about you, as a JSON file.",
    section=SECTION,
)
async def mydata_export(evt: CommandEvent) -> None:
    data = json.dumps(await evt.ctx.mydata.collect(evt.sender, reader=evt.sender), indent=2, sort_keys=True).encode()
    await evt.reply_file(data, name="clutto-mydata.json", mime_type="application/json")
    await evt.ctx.mydata.exported(evt.sender, len(data))
    await evt.reply(f"Here is your data ({len(data):,} bytes). It is also available through the API at "
                    "GET /_clutto/v1/users/{your id}/data.")
