"""Files members send the bot in their chat with it (a vCard, a profile photo): read from the
homeserver, decrypted when they came as encrypted attachments, and removed again afterwards
(the message redacted, its media deleted), so the homeserver keeps nothing the bridge took.

A file is named by what its message carries: ``url`` (an mxc URI) when it was sent in the
clear, or ``file`` (the mxc URI with the key, iv and hashes that open it) when it was sent
encrypted; ``SentFile`` is either, as the handlers hand it over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from clutto_bridge.domain.errors import InvalidInput
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.errors import MatrixRequestError, UnreadableAttachment
from clutto_bridge.matrix.homeserver import Homeserver

log = logging.getLogger("clutto.files")

SentFile = str | dict[str, Any]
"""An mxc URI, or an encrypted attachment's ``file`` object."""


def media_of(source: SentFile | None) -> str | None:
    """The mxc URI the homeserver stores the file (or its ciphertext) under."""
    if isinstance(source, dict):
        url = source.get("url")
        return url if isinstance(url, str) else None
    return source or None


async def read_sent_file(homeserver: Homeserver, source: SentFile | None, what: str, limit: int) -> bytes:
    """The file's content (decrypted), refused beyond ``limit`` bytes; ``what`` names it in refusals."""
    if not media_of(source):
        raise InvalidInput(f"That {what} has no content I can read.")
    assert source is not None
    try:
        data = await homeserver.download_attachment(source)
    except UnreadableAttachment:
        raise InvalidInput(f"That {what} does not decrypt with the key your app sent with it.") from None
    except MatrixRequestError as e:
        raise InvalidInput(f"I could not fetch that {what} (error {e.http_status}).") from None
    if len(data) > limit:
        raise InvalidInput(f"The {what} has {len(data):,} bytes; at most {limit:,} are accepted.")
    return data


@dataclass
class FileRemoval:
    """What became of a file sent in a chat after it was read."""

    redacted: bool
    """The message is gone from the chat."""
    media_deleted: bool
    """The file itself is deleted from the homeserver's media store."""


async def remove_sent_file(
    homeserver: Homeserver, admin: SynapseAdmin, room_id: str, event_id: str, source: SentFile | None, reason: str
) -> FileRemoval:
    """Redact the file's message and delete its media.

    Either step may fail (the bot may lack the power to redact in a chat the user created;
    media of another homeserver, or no admin rights, cannot be deleted): the caller says so.
    """
    redacted = media_deleted = False
    try:
        await homeserver.redact(room_id, event_id, reason)
        redacted = True
    except MatrixRequestError as e:
        log.warning("Could not redact the file %s in %s: %s", event_id, room_id, e)
    url = media_of(source)
    if url:
        try:
            media_deleted = await admin.delete_media(url)
        except (AdminUnavailable, MatrixRequestError) as e:
            log.warning("Could not delete the media %s of %s: %s", url, event_id, e)
    log.info("File %s in %s: redacted %s, media deleted %s", event_id, room_id, redacted, media_deleted)
    return FileRemoval(redacted, media_deleted)
