"""The bot's end-to-end encryption device: the one module that knows the crypto library.

mautrix-python's ``OlmMachine`` (libolm through python-olm) does the cryptography; nothing here
is hand-written crypto. Swapping the engine (for vodozemac, say) means changing this module.

- **Device** (MSC4190): the appservice creates the bot's device itself (a ``PUT`` of the device
  as the bot) and acts as it with ``?device_id=``. To-device messages, one-time-key counts and
  device-list changes arrive in the appservice transactions (MSC2409/MSC3202), fed to the machine
  through mautrix's transaction hooks (``to_device_handler``, ``otk_handler``,
  ``device_list_handler``), which mautrix's ``handle_transaction`` runs after the acknowledgement,
  in the device lane (``jobs/inbox.py``). Until the device is loaded those hooks wait, so
  nothing is lost at start-up.
- **Store**: mautrix's ``PgCryptoStore`` in the bridge database (SQLite or PostgreSQL), its
  ``crypto_*`` tables upgraded by mautrix's own upgrade table. Its pickle key is derived from a
  keyset key with HKDF and this module's ``info`` (never a constant); which key is recorded
  beside it, and after ``keys rotate`` the next start re-pickles everything under the new
  primary before the machine loads (a running machine writes pickles all the time, so they are
  never rewritten under it).
- **Identity**: the bot cross-signs its own device (master, self-signing and user-signing keys,
  their seeds stored on the homeserver encrypted with a recovery key, SSSS), so clients show it
  as verified. The recovery key goes into the keyset file and nowhere else (never logged); a
  new device of the bot (a new database) is signed by the same identity with it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import olm
from mautrix.api import HTTPAPI, Method, Path
from mautrix.client import Client
from mautrix.crypto import OlmMachine, PgCryptoStore, RejectKeyShare
from mautrix.crypto.attachments import decrypt_attachment, encrypt_attachment
from mautrix.crypto.signature import verify_signature_json
from mautrix.errors import DecryptionError, EncryptionError, MatrixRequestError, SessionNotFound
from mautrix.types import (
    ASToDeviceEvent,
    DeviceID,
    DeviceIdentity,
    DeviceLists,
    DeviceOTKCount,
    EncryptedEvent,
    EncryptedFile,
    Event,
    EventType,
    RequestedKeyInfo,
    RoomID,
    RoomKeyWithheldCode,
    SigningKey,
    StateEvent,
    TrustState,
    UserID,
)
from mautrix.util.async_db import Database
from mautrix.util.logging import TraceLogger

from clutto_bridge.crypto import Keyset, KeysetError
from clutto_bridge.matrix.appservice import CluttoAppService
from clutto_bridge.matrix.state_store import MembershipStateStore

log = logging.getLogger("clutto.e2ee")

# HKDF's info for the crypto store's pickle key: a secret for this purpose only.
PICKLE_INFO = b"clutto-bridge matrix crypto store pickle key v1"
DEVICE_NAME = "clutto-bridge"
# How long a message waits for its room key before the bot says it cannot read it: the key
# travels as a to-device message, often in the same or the next transaction.
KEY_WAIT_S = 5.0
# The python-olm type of each pickled column (mautrix's tables; see db/crypto_pickles.py).
_PICKLED_TYPES: dict[str, Any] = {
    "crypto_account": olm.Account,
    "crypto_olm_session": olm.Session,
    "crypto_megolm_inbound_session": olm.InboundGroupSession,
    "crypto_megolm_outbound_session": olm.OutboundGroupSession,
}


class CryptoStoreKeyError(Exception):
    """The key the crypto store is pickled under is not in the keyset: one line."""


class NoDevice(Exception):
    """The bot has no E2EE device, so it cannot write into an encrypted room (and never writes
    plaintext there instead)."""


class UnreadableAttachment(Exception):
    """An encrypted attachment whose bytes do not match its key and hash (or whose key is malformed)."""


class Keys(Protocol):
    """The keyset as the device needs it (the keyset file)."""

    def load(self) -> Keyset: ...

    def store_recovery_key(self, recovery_key: str) -> None: ...


class PickleRecord(Protocol):
    """Which keyset key the store's pickles are under (``db.crypto_pickles.CryptoPickles``)."""

    async def key_id(self, account_id: str) -> int | None: ...

    async def repickle(self, account_id: str, key_id: int, convert: Callable[[str, bytes], bytes]) -> int: ...


def pickle_key(keyset: Keyset, key_id: int) -> str:
    """The crypto store's pickle key under keyset key ``key_id`` (olm takes a passphrase string)."""
    return base64.b64encode(keyset.derive(key_id, PICKLE_INFO)).decode()


def repickler(old: str, new: str) -> Callable[[str, bytes], bytes]:
    """A pickle of one of mautrix's tables, opened with ``old`` and pickled again with ``new``."""

    def convert(table: str, pickle: bytes) -> bytes:
        return _PICKLED_TYPES[table].from_pickle(pickle, old).pickle(new)

    return convert


class BotDevice:
    """The bot's E2EE device, started with the appservice (see the module docstring)."""

    def __init__(
        self,
        appservice: CluttoAppService,
        state_store: MembershipStateStore,
        database_url: str,
        keys: Keys,
        pickles: PickleRecord,
    ) -> None:
        self.appservice = appservice
        self.state_store = state_store
        self.keys = keys
        self.pickles = pickles
        self.crypto_db = Database.create(
            database_url, upgrade_table=PgCryptoStore.upgrade_table, log=logging.getLogger("clutto.e2ee.db")
        )
        self.machine: OlmMachine | None = None
        # Whether a session's key may go out on a key request (room id, session id), asked after
        # mautrix's own rules; set by the bridge to keep keys within the team's retention.
        self.may_share: Callable[[str, str], Awaitable[bool]] | None = None
        self._loaded = asyncio.Event()
        # One share of a new Megolm session per room at a time (mautrix requires it).
        self._sharing: dict[str, asyncio.Lock] = {}
        appservice.encryption_events = True
        appservice.to_device_handler = self._to_device
        appservice.otk_handler = self._otk_counts
        appservice.device_list_handler = self._device_lists
        appservice.decrypt = self.readable
        appservice.matrix_event_handler(self.member_changed)

    @property
    def device_id(self) -> DeviceID | None:
        return self.machine.client.device_id if self.machine else None

    async def start(self, pool: Database) -> None:
        """Open (or create) the device on ``pool``, the bridge's started database. A homeserver
        that refuses appservice devices leaves the bot without one (a warning, not a stop)."""
        try:
            self.crypto_db.override_pool(pool)
            await self.crypto_db.start()
            account_id = self.appservice.bot_mxid
            store = PgCryptoStore(account_id, await self._pickle_key(account_id), self.crypto_db)
            await store.open()
            try:
                self.machine = await self._open(store)
            except MatrixRequestError as e:
                log.warning(
                    "The bot has no E2EE device (the homeserver answered %s %s); it cannot read encrypted "
                    "rooms. The homeserver needs MSC4190 support and the registration's "
                    "io.element.msc4190: true (`clutto-bridge doctor`).",
                    e.http_status,
                    e.errcode,
                )
                return
            log.info("E2EE device %s of %s ready", self.device_id, account_id)
        finally:
            self._loaded.set()

    async def _pickle_key(self, account_id: str) -> str:
        """The pickle key of the key the store is recorded under; after a rotation, every pickle is
        rewritten under the primary key first (nothing uses the store yet)."""
        keyset = self.keys.load()
        recorded = await self.pickles.key_id(account_id)
        if recorded == keyset.primary:
            return pickle_key(keyset, recorded)
        new = pickle_key(keyset, keyset.primary)
        try:
            old = new if recorded is None else pickle_key(keyset, recorded)
        except KeysetError:
            raise CryptoStoreKeyError(
                f"the bot's E2EE crypto store is pickled under key {recorded}, which is not in the keyset"
            ) from None
        count = await self.pickles.repickle(account_id, keyset.primary, repickler(old, new))
        if recorded is not None:
            log.info(
                "Re-pickled the E2EE crypto store (%d pickles) from key %s to key %s", count, recorded, keyset.primary
            )
        return new

    async def _open(self, store: PgCryptoStore) -> OlmMachine:
        bot = self.appservice.bot_mxid
        api = HTTPAPI(
            base_url=self.appservice.server,
            token=self.appservice.as_token,
            client_session=self.appservice.http_session,
            as_user_id=bot,
            default_retry_count=self.appservice.default_http_retry_count,
            log=cast(TraceLogger, logging.getLogger("clutto.e2ee.http")),
        )
        client = Client(mxid=bot, api=api, state_store=self.state_store)
        known = await store.get_device_id()
        await client.create_device_msc4190(known or "", DEVICE_NAME)  # MSC4190: created if missing
        machine = OlmMachine(
            client, store, self.state_store, log=cast(TraceLogger, logging.getLogger("clutto.e2ee.olm"))
        )
        # A key request is answered only for devices their owner's identity cross-signed, trusting
        # the first identity seen (TOFU); the room-membership check comes with the decrypt phase.
        machine.share_keys_min_trust = TrustState.CROSS_SIGNED_TOFU
        # A room's keys go to every device of its current members (joined or invited), verified or
        # not: who is a member is the team's decision, which the bridge enforces; requiring cross-
        # signed devices would leave members of clients without cross-signing unable to read the bot.
        machine.send_keys_min_trust = TrustState.UNVERIFIED
        machine.allow_key_share = self._key_share_rule(machine.allow_key_share)
        try:
            await machine.load()
        except olm.OlmAccountError as e:
            raise CryptoStoreKeyError(
                f"the bot's E2EE crypto store does not open with its key from the keyset ({e})"
            ) from None
        if not known:
            await store.put_device_id(client.device_id)
        if not (machine.account and machine.account.shared):
            await machine.share_keys()
        published = await _published_keys(client)
        if published.device is None and known:
            log.warning("The bot's E2EE device %s lost its keys on the homeserver: making a new device", known)
            await store.delete()
            return await self._open(PgCryptoStore(store.account_id, store.pickle_key, self.crypto_db))
        if not published.cross_signed:
            await self._self_sign(machine)
        return machine

    def _key_share_rule(
        self, rule: Callable[[DeviceIdentity, RequestedKeyInfo], Awaitable[bool]]
    ) -> Callable[[DeviceIdentity, RequestedKeyInfo], Awaitable[bool]]:
        """``rule`` (who may get keys), then ``may_share`` (which keys may go out at all): a refused
        key is withheld with a reason the requesting client shows."""

        async def allow(device: DeviceIdentity, request: RequestedKeyInfo) -> bool:
            if not await rule(device, request):
                return False
            if self.may_share is not None and not await self.may_share(request.room_id, request.session_id):
                raise RejectKeyShare(
                    f"Withholding session {request.session_id} of {request.room_id}: messages past retention "
                    "or unknown",
                    code=RoomKeyWithheldCode.UNAVAILABLE,
                    reason="The messages of this session are past the team's retention",
                )
            return True

        return allow

    async def _self_sign(self, machine: OlmMachine) -> None:
        """Cross-sign the device with the bot's identity: the one the keyset's recovery key opens,
        or a new one (whose recovery key then goes into the keyset file, and nowhere else)."""
        recovery_key = self.keys.load().recovery_key
        if recovery_key:
            try:
                await machine.verify_with_recovery_key(recovery_key)
                log.info("Signed the E2EE device with the bot's cross-signing identity")
                return
            except Exception as e:  # the message could quote key material: only its type is logged
                log.warning(
                    "The keyset's recovery key does not open the bot's cross-signing keys on the "
                    "homeserver (%s): making a new identity; members see the bot's identity change",
                    type(e).__name__,
                )
        recovery_key = await machine.generate_recovery_key()
        self.keys.store_recovery_key(recovery_key)
        log.info(
            "Made the bot's cross-signing identity and signed its E2EE device; the recovery key is in the keyset file"
        )

    # --- reading and writing in encrypted rooms ---

    async def is_encrypted(self, room_id: str) -> bool:
        """Whether the room has ``m.room.encryption`` (as the state store learned from its events)."""
        return bool(await self.state_store.is_encrypted(RoomID(room_id)))

    async def encrypt(self, room_id: str, event_type: EventType, content: Any, members: Callable[[], Any]) -> Any:
        """``content`` as Megolm ciphertext for the room. A new session is shared first with the
        devices of ``await members()``, the room's current members; a member change ends the
        session (``member_changed``), so one who left never gets the keys of what follows."""
        if self.machine is None:
            raise NoDevice(f"the bot has no E2EE device, so it does not write into the encrypted room {room_id}")
        try:
            return await self.machine.encrypt_megolm_event(RoomID(room_id), event_type, content)
        except EncryptionError:
            pass  # no session yet, or it expired: share a new one
        async with self._sharing.setdefault(room_id, asyncio.Lock()):
            try:
                return await self.machine.encrypt_megolm_event(RoomID(room_id), event_type, content)
            except EncryptionError:
                await self.machine.share_group_session(RoomID(room_id), [UserID(u) for u in await members()])
            return await self.machine.encrypt_megolm_event(RoomID(room_id), event_type, content)

    async def readable(self, event: Event) -> Event | None:
        """What the appservice hands its handlers for an m.room.encrypted event: the event it
        holds, or None (the encrypted event goes on) when its key did not come in time."""
        return await self.decrypt(event, KEY_WAIT_S) if isinstance(event, EncryptedEvent) else None

    async def decrypt(self, event: EncryptedEvent, wait: float) -> Event | None:
        """The event decrypted, waiting up to ``wait`` seconds for its key to arrive (a room key
        may come in a later transaction than the message); None when it cannot be read."""
        if self.machine is None:
            return None
        try:
            return await self.machine.decrypt_megolm_event(event)
        except SessionNotFound as e:
            if wait <= 0 or not await self.machine.wait_for_session(event.room_id, e.session_id, timeout=wait):
                return None
        except DecryptionError as e:
            log.warning("Could not decrypt %s in %s: %s", event.event_id, event.room_id, type(e).__name__)
            return None
        try:
            return await self.machine.decrypt_megolm_event(event)
        except DecryptionError as e:
            log.warning("Could not decrypt %s in %s: %s", event.event_id, event.room_id, type(e).__name__)
            return None

    async def request_key(self, event: EncryptedEvent, timeout: float) -> Event | None:
        """Ask the sender's devices for the event's key and wait up to ``timeout`` seconds; the
        event decrypted when the key came."""
        if self.machine is None:
            return None
        content = event.content
        devices = (
            [content.device_id]
            if getattr(content, "device_id", None)
            else list(await self.machine.crypto_store.get_devices(event.sender) or {})
        )
        if not devices:
            return None
        # A dict of devices, not the list mautrix's type hint names: once a key has come, mautrix
        # deletes the answering device from that mapping (a list would raise TypeError).
        got = await self.machine.request_room_key(
            event.room_id,
            content.sender_key,
            content.session_id,
            cast(dict[UserID, list[DeviceID]], {event.sender: dict.fromkeys(devices)}),
            timeout=timeout,
        )
        return await self.decrypt(event, 0) if got else None

    async def end_session(self, room_id: str) -> None:
        """Stop using the room's outgoing Megolm session: what the bot sends next gets a new one,
        shared with the room's members as they are then."""
        if self.machine is not None:
            await self.machine.crypto_store.remove_outbound_group_session(RoomID(room_id))

    async def member_changed(self, event: StateEvent) -> None:
        """A leave, kick or ban in an encrypted room ends the room's outgoing session."""
        if self.machine is not None and event.type == EventType.ROOM_MEMBER:
            await self.machine.handle_member_event(event)

    # --- the transaction hooks (see the module docstring) ---

    async def _to_device(self, event: ASToDeviceEvent) -> None:
        await self._loaded.wait()
        if self.machine:
            await self.machine.handle_as_to_device_event(event)

    async def _otk_counts(self, counts: dict[UserID, dict[DeviceID, DeviceOTKCount]]) -> None:
        await self._loaded.wait()
        # Only this device's count: the bot's other devices (a lost store's, or a test's) are not ours.
        own = counts.get(self.appservice.bot_mxid, {}).get(self.device_id) if self.machine and self.device_id else None
        if self.machine and own is not None:
            await self.machine.handle_otk_count(own)

    async def _device_lists(self, lists: DeviceLists) -> None:
        await self._loaded.wait()
        if self.machine:
            await self.machine.handle_as_device_lists(lists)

    async def stop(self) -> None:
        if self.machine:
            await self.machine.crypto_store.close()
        self._loaded.set()  # a transaction waiting on a start that never came goes on


@dataclass(frozen=True)
class PublishedKeys:
    device: dict | None  # the device's keys as the homeserver serves them to members
    cross_signed: bool  # signed by the self-signing key that the master key signed


async def _published_keys(client: Client) -> PublishedKeys:
    """What a member's client sees of the bot's device (``/keys/query``): the truth clients act on,
    checked by signature rather than read from mautrix's cache."""
    bot, device_id = client.mxid, client.device_id
    found = await client.api.request(Method.POST, Path.v3.keys.query, {"device_keys": {bot: []}})
    device = (found.get("device_keys") or {}).get(bot, {}).get(device_id) or None
    if not device or not device.get("keys"):
        return PublishedKeys(None, False)
    master = _only_key((found.get("master_keys") or {}).get(bot))
    ssk_json = (found.get("self_signing_keys") or {}).get(bot)
    ssk = _only_key(ssk_json)
    signed = bool(
        master
        and ssk
        and ssk_json
        and verify_signature_json(ssk_json, bot, master, SigningKey(master))
        and verify_signature_json(device, bot, ssk, SigningKey(ssk))
    )
    return PublishedKeys(device, signed)


def _only_key(cross_signing_key: dict[str, Any] | None) -> str | None:
    keys = list((cross_signing_key or {}).get("keys", {}).values())
    return keys[0] if len(keys) == 1 else None


def encrypt_file(data: bytes) -> tuple[bytes, EncryptedFile]:
    """An attachment for an encrypted room: its ciphertext to upload, and the key to send along."""
    return encrypt_attachment(data)


def decrypt_file(ciphertext: bytes, file: EncryptedFile) -> bytes:
    """An encrypted attachment's content (its SHA-256 is checked before anything is decrypted)."""
    try:
        return decrypt_attachment(ciphertext, file.key.key, file.hashes.get("sha256", ""), file.iv)
    except DecryptionError as e:
        raise UnreadableAttachment(f"the encrypted file {file.url} does not decrypt: {e}") from None
