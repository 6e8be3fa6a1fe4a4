"""A member's own things: profile, policy consent, contact import, own data.

The files a member sends the bot (a vCard, a photo) are handled in ``processor.py``."""

from __future__ import annotations

import json
import logging

from clutto_bridge.commands.registry import CommandEvent, registry
from clutto_bridge.domain import validation
from clutto_bridge.domain.contacts import AlreadyAllowed
from clutto_bridge.domain.errors import Conflict
from clutto_bridge.domain.formatting import document, prose

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
async def profile_show(evt: CommandEvent, *, user: str | None = None) -> None:
    user_id = validation.user_id(user) if user is not None else evt.sender
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
async def profile_set(evt: CommandEvent, *, field: str, value: str) -> None:
    profile = await evt.ctx.profiles.update(evt.sender, {field: value}, actor=evt.sender)
    await evt.reply(f"Profile updated.\n{_format_profile(profile)}")


@registry.command(
    "profile unset",
    args="FIELD",
    help_text="Remove an optional profile field.",
    section=SECTION,
    example="profile unset designation",
)
async def profile_unset(evt: CommandEvent, *, field: str) -> None:
    profile = await evt.ctx.profiles.update(evt.sender, {field: None}, actor=evt.sender)
    await evt.reply(f"Profile updated.\n{_format_profile(profile)}")


@registry.command("policy", help_text="Read the current privacy policy.", section=SECTION)
async def policy(evt: CommandEvent) -> None:
    text = evt.ctx.consent.current
    accepted = await evt.ctx.consent.has_consented(evt.sender)
    status = "You have accepted it." if accepted else "Send `accept` to agree to it."
    await evt.reply(
        prose(f"**Privacy policy, version {text.version}** (published {text.published.isoformat()})")
        + document(text.text)
        + prose(status)
    )


@registry.command(
    "accept",
    args="[VERSION]",
    help_text="Agree to the current privacy policy.",
    section=SECTION,
    example="accept",
)
async def accept(evt: CommandEvent, *, version: str | None = None) -> None:
    text = await evt.ctx.onboarding.accept(evt.sender, version)
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
    await evt.reply(
        "Contact import is allowed. Send a vCard (.vcf) file in this chat, or upload it through the "
        "API. We keep names, email addresses and Matrix IDs only, and delete the file itself once it "
        "is read. `contacts revoke` deletes them all."
    )


@registry.command(
    "contacts revoke",
    private=True,
    help_text="Withdraw contact import and delete imported contacts.",
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
    help_text="All Clutto stores about you, as a JSON file (in an encrypted chat; otherwise where to get it).",
    section=SECTION,
)
async def mydata_export(evt: CommandEvent) -> None:
    data = json.dumps(await evt.ctx.mydata.collect(evt.sender, reader=evt.sender), indent=2, sort_keys=True).encode()
    elsewhere = "GET /_clutto/v1/users/{your id}/data in the API"
    if evt.ctx.portal is not None:
        elsewhere = f"the portal's My data page (`portal` sends you a sign-in link), or {elsewhere}"
    # Only into an encrypted chat: in a plaintext one the file would lie readable in the
    # homeserver's media store, where no retention reaches it.
    if not await evt.ctx.homeserver.is_encrypted(evt.room_id):
        await evt.reply(
            f"Your data is {len(data):,} bytes. This chat is not encrypted, so I do not send it here as a "
            f"file: it would stay readable in the homeserver's media store. Get it from {elsewhere}."
        )
        return
    await evt.reply_file(data, name="clutto-mydata.json", mime_type="application/json")
    await evt.ctx.mydata.exported(evt.sender, len(data))
    await evt.reply(f"Here is your data ({len(data):,} bytes), encrypted like this chat. It is also in {elsewhere}.")
