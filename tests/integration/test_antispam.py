"""Enforcement before the write: a second Synapse with synapse-http-antispam asks the bridge
before it stores joins, invites, state events and messages (issue 15).

The session's Synapse runs without the module, and the after-the-fact tests prove the
rules there (module absent): test_integrations.py (outsiders and widgets removed),
test_members.py (power levels put back), test_consent.py (block mode by power levels),
test_profile.py (names reset). Here every refusal is checked at the client (error code and
message) and on the homeserver (the room's timeline and state through the admin API), and
the allowed action next to it passes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from clutto_bridge.demo.synapse import free_port
from clutto_bridge.web.antispam import PATH, module_config
from tests.integration.conftest import Bridges, Homeserver, start_homeserver
from tests.integration.helpers import team_with_member
from tests.integration.matrix_client import MatrixClient, MatrixError, wait_until

pytestmark = pytest.mark.integration


class Guarded:
    """The Synapse with the module, and the one port its bridges listen on (the module's base_url)."""

    def __init__(self, homeserver: Homeserver, port: int) -> None:
        self.homeserver = homeserver
        self.port = port


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Guarded:
    port = free_port()

    def modules(settings) -> dict:
        return {"modules": [module_config(f"http://127.0.0.1:{port}", settings.antispam.shared_secret)]}

    homeserver = start_homeserver(tmp_path_factory.mktemp("guarded"), modules)
    yield Guarded(homeserver, port)
    homeserver.synapse.stop()
    homeserver.front.stop()


@pytest.fixture
async def guarded_bridges(guarded: Guarded, database_url: str, tmp_path: Path) -> Bridges:
    manager = Bridges(guarded.homeserver, tmp_path / "bridge", database_url)
    yield manager
    for bridge in list(manager.running):
        await manager.stop(bridge)
    await guarded.homeserver.forget_bot_devices()


async def _start(bridges: Bridges, guarded: Guarded, **overrides) -> Bridge:
    return await bridges.start(bridges.settings(appservice__port=guarded.port, **overrides))


@pytest.fixture
def person(guarded: Guarded, http: aiohttp.ClientSession):
    async def make(name: str = "user") -> MatrixClient:
        localpart = f"{name}-{secrets.token_hex(4)}"
        account = await guarded.homeserver.synapse.register_user(localpart)
        return await MatrixClient.login(guarded.homeserver.url, localpart, account.password, http)

    return make


async def _refused(call, errcode: str, words: str) -> dict:
    with pytest.raises(MatrixError) as refused:
        await call
    assert refused.value.status == 403, refused.value.body
    assert refused.value.body["errcode"] == errcode, refused.value.body
    assert words in refused.value.body["error"], refused.value.body
    return refused.value.body


class Admin:
    """The homeserver's own record of a room, read with the bot's admin rights."""

    def __init__(self, bridge: Bridge, http: aiohttp.ClientSession) -> None:
        self.base = bridge.settings.homeserver.address + "/_synapse/admin/v1/rooms/"
        self.auth = {"Authorization": f"Bearer {bridge.settings.appservice.as_token}"}
        self.http = http

    async def _get(self, path: str, **params) -> dict:
        async with self.http.get(self.base + path, headers=self.auth, params=params) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def events(self, room_id: str) -> list[dict]:
        return (await self._get(f"{quote(room_id)}/messages", dir="b", limit="1000"))["chunk"]

    async def state(self, room_id: str) -> list[dict]:
        return (await self._get(f"{quote(room_id)}/state"))["state"]


def _touching(events: list[dict], event_type: str, state_key: str | None = None, body: str | None = None) -> list[dict]:
    return [
        e
        for e in events
        if e["type"] == event_type
        and (state_key is None or e.get("state_key") == state_key)
        and (body is None or e.get("content", {}).get("body") == body)
    ]


@pytest.mark.promise("P1", "P9")
async def test_outsider_cannot_be_invited_or_join_and_a_member_added_with_the_bridge_can(
    guarded_bridges: Bridges, guarded: Guarded, person, http: aiohttp.ClientSession
) -> None:
    bridge = await _start(guarded_bridges, guarded)
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner", "member"))
    outsider = await person("outsider")
    general = rooms[0]
    admin = Admin(bridge, http)

    invite = owner.request("POST", f"/v3/rooms/{quote(general)}/invite", {"user_id": outsider.user_id})
    await _refused(invite, "M_FORBIDDEN", "is not a member of the team")
    for room_id in (general, team.space_id):
        await _refused(outsider.join(room_id), "M_FORBIDDEN", "only its members may join")
        assert not _touching(await admin.events(room_id), "m.room.member", outsider.user_id)
        assert not _touching(await admin.state(room_id), "m.room.member", outsider.user_id)

    # A manager adds them with the bridge: recorded first, then invited; both pass.
    await bridge.members.invite(team, outsider.user_id, "member", actor=owner.user_id)
    await outsider.wait_for_invites({team.space_id, general})
    await outsider.join(team.space_id)
    await outsider.join(general)
    assert outsider.user_id in await owner.joined_members(general)

    # Removed, they cannot come back.
    await bridge.members.remove(team, outsider.user_id, actor=owner.user_id)
    body = await _refused(outsider.join(general), "M_FORBIDDEN", "no longer a member")
    assert team.name in body["error"]
    assert outsider.user_id not in await owner.joined_members(general)


@pytest.mark.promise("P9")
async def test_widget_outside_the_allowed_prefixes_is_never_stored(
    guarded_bridges: Bridges, guarded: Guarded, person, http: aiohttp.ClientSession
) -> None:
    bridge = await _start(
        guarded_bridges, guarded, policy__integrations__widget_url_prefixes=["https://meet.example.com/"]
    )
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner", "member"))
    general = rooms[0]
    good = {"type": "jitsi", "url": "https://meet.example.com/room-1", "name": "Meet"}
    bad = {"type": "custom", "url": "https://tracker.evil.example/pixel", "name": "Tracker"}

    await _refused(
        owner.set_state(general, "im.vector.modular.widgets", "bad", bad), "M_FORBIDDEN", "not on the team's list"
    )
    await owner.set_state(general, "im.vector.modular.widgets", "good", good)

    state = await Admin(bridge, http).state(general)
    assert not _touching(state, "im.vector.modular.widgets", "bad")
    assert [e["content"] for e in _touching(state, "im.vector.modular.widgets", "good")] == [good]
    with pytest.raises(MatrixError) as missing:
        await member.state(general, "im.vector.modular.widgets", "bad")
    assert missing.value.status == 404


@pytest.mark.promise("P9")
async def test_power_levels_by_hand_are_refused_and_a_role_change_with_the_bridge_passes(
    guarded_bridges: Bridges, guarded: Guarded, person, http: aiohttp.ClientSession
) -> None:
    bridge = await _start(guarded_bridges, guarded)
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner", "member"))
    general = rooms[0]
    admin = Admin(bridge, http)
    before = await owner.state(general, "m.room.power_levels")
    raised = {**before, "users": {**before["users"], member.user_id: 100}}
    events_before = len(_touching(await admin.events(general), "m.room.power_levels"))

    await _refused(
        owner.set_state(general, "m.room.power_levels", "", raised), "M_FORBIDDEN", "follow the team's roles"
    )
    assert await owner.state(general, "m.room.power_levels") == before
    assert len(_touching(await admin.events(general), "m.room.power_levels")) == events_before

    # A key the team's settings do not manage is the room's own business.
    await owner.set_state(general, "m.room.power_levels", "", {**before, "notifications": {"room": 100}})
    await bridge.members.change_role(team, member.user_id, "admin", actor=owner.user_id)
    levels = await member.state(general, "m.room.power_levels")
    assert levels["users"][member.user_id] == 50 and levels["notifications"] == {"room": 100}


@pytest.mark.promise("P8")
async def test_member_without_consent_cannot_write_in_team_rooms_until_they_accept(
    guarded_bridges: Bridges, guarded: Guarded, person, http: aiohttp.ClientSession
) -> None:
    bridge = await _start(guarded_bridges, guarded, policy__consent__mode="block")
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner",))
    general = rooms[0]
    text = f"before consent {secrets.token_hex(4)}"

    await _refused(member.send_text(general, text), "M_CONSENT_NOT_GIVEN", "accept the privacy policy")
    assert not _touching(await owner.messages(general), "m.room.message", body=text)
    assert not _touching(await Admin(bridge, http).events(general), "m.room.message", body=text)

    # Outside team rooms they write as before; after accepting, in team rooms too.
    dm = await member.create_dm(owner.user_id)
    await member.send_text(dm, "hello outside the team")
    await bridge.onboarding.accept(member.user_id)
    await member.send_text(general, "after consent")
    await owner.send_text(general, "the owner had accepted")


@pytest.mark.promise("P1")
async def test_with_the_bridge_stopped_people_still_chat_outside_team_rooms(
    guarded_bridges: Bridges, guarded: Guarded, person
) -> None:
    bridge = await _start(guarded_bridges, guarded)
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner", "member"))
    await guarded_bridges.stop(bridge)

    # Every callback fails open: new chats, invites, joins and messages outside team rooms work.
    a, b = await person("a"), await person("b")
    dm = await a.create_dm(b.user_id)
    await b.wait_for_invites({dm})
    await b.join(dm)
    await b.send_text(dm, "the bridge is down and we still talk")
    assert any(e.get("content", {}).get("body") == "the bridge is down and we still talk" for e in await a.messages(dm))
    # And team members keep talking in their rooms; enforcement resumes with the bridge.
    await member.send_text(rooms[0], "still here")


async def test_wrong_secret_is_refused_and_logged_without_it(
    guarded_bridges: Bridges, guarded: Guarded, person, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    module_secret = guarded_bridges.settings().antispam.shared_secret
    bridge = await _start(guarded_bridges, guarded, antispam__shared_secret="a-different-secret-" + "x" * 16)
    url = f"http://127.0.0.1:{guarded.port}{PATH}/user_may_join_room"
    body = {"user": "@x:localhost", "room": "!r:localhost", "is_invited": False}
    caplog.set_level(logging.INFO, "clutto.antispam")
    caplog.set_level(logging.INFO, "clutto.access")
    async with http.post(url, json=body, headers={"Authorization": "Bearer guessed-secret-123"}) as resp:
        assert resp.status == 401
    async with http.post(url, json=body) as resp:
        assert resp.status == 401
    own = {"Authorization": f"Bearer {bridge.settings.antispam.shared_secret}"}
    # Not JSON: M_NOT_JSON, as on every JSON endpoint of the port (web/bodies.py).
    async with http.post(url, data=b"{not json", headers=own) as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (400, "M_NOT_JSON")
    async with http.post(url, json={"user": "@x:localhost"}, headers=own) as resp:
        assert resp.status == 400
    async with http.post(url, json=body, headers=own) as resp:
        assert (resp.status, await resp.json()) == (200, {})  # a room of no team

    # Synapse's own requests carry the module's secret, which this bridge does not have:
    # refused, and the module falls back to its fail mode (open), so chats go on.
    a, b = await person("a"), await person("b")
    dm = await a.create_dm(b.user_id)
    await a.send_text(dm, "hello")
    refusals = [r.getMessage() for r in caplog.records if "wrong or missing antispam secret" in r.getMessage()]
    assert len(refusals) >= 3
    assert not any(
        s in caplog.text for s in ("guessed-secret-123", module_secret, bridge.settings.antispam.shared_secret)
    )
    # Refused and malformed requests are logged and recorded like any request on the port; a
    # question answered to the holder of the secret (one per message on the homeserver) is not.
    route = f"{PATH}/user_may_join_room"
    statuses = sorted(r.status for r in await bridge.access.recent() if r.route == route)
    assert statuses[:2] == [400, 400] and set(statuses[2:]) == {401} and len(statuses) >= 4, statuses
    logged = [
        r.getMessage() for r in caplog.records if r.name == "clutto.access" and f'"POST {route}"' in r.getMessage()
    ]
    assert sum(f'"POST {route}" 400 ' in line for line in logged) == 2, logged
    assert sum(f'"POST {route}" 401 ' in line for line in logged) >= 2, logged
    assert not any(f'"POST {route}" 200 ' in line for line in logged), logged


async def test_answers_do_not_wait_behind_a_write_the_bridge_has_open(
    guarded_bridges: Bridges, guarded: Guarded, person
) -> None:
    """The homeserver waits for each answer. With SQLite the bridge's pool is one connection,
    held by any write in progress; the answers read through a second one (WAL)."""
    bridge = await _start(guarded_bridges, guarded)
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner", "member"))
    outsider = await person("outsider")

    def asked(question):
        # As a request handler would: outside this transaction (mautrix hands a task that
        # inherits its context the transaction's connection). A deadline, not a timing: on
        # the one connection the answer would wait for ever.
        return asyncio.wait_for(asyncio.create_task(question, context=contextvars.Context()), 60)

    async with bridge.db.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE team SET state=state WHERE id=$1", team.id)  # a write, still open
        refusal = await asked(bridge.gate.join(outsider.user_id, rooms[0]))
        allowed = await asked(bridge.gate.invite(owner.user_id, member.user_id, rooms[0]))
    assert refusal is not None and refusal.rule == "outsider_join", refusal
    assert allowed is None


@pytest.mark.promise("P2")
async def test_a_name_the_profile_does_not_give_never_reaches_team_rooms(
    guarded_bridges: Bridges, guarded: Guarded, person, http: aiohttp.ClientSession
) -> None:
    bridge = await _start(guarded_bridges, guarded)
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner", "member"))
    general = rooms[0]
    await bridge.profiles.update(member.user_id, {"first_name": "Ada", "last_name": "Lovelace"}, actor=member.user_id)

    async def shown(client: MatrixClient, room_id: str) -> str | None:
        return (await client.state(room_id, "m.room.member", member.user_id)).get("displayname")

    async def named_by_profile() -> bool:
        # On the homeserver, and in what the bridge has seen of each team room.
        seen = [await bridge.appservice.state_store.get_member(r, member.user_id) for r in [team.space_id, *rooms]]
        return await shown(owner, general) == "Ada Lovelace" and all(
            m and m.displayname == "Ada Lovelace" for m in seen
        )

    await wait_until(named_by_profile, what="the bridge's own write of the profile's name to pass")
    outside = await owner.create_dm(member.user_id)
    await member.wait_for_invites({outside})
    await member.join(outside)

    # A per-room name in a team room: refused at the client, never stored.
    event = await member.state(general, "m.room.member", member.user_id)
    change = member.set_state(general, "m.room.member", member.user_id, {**event, "displayname": "Boss"})
    await _refused(change, "M_FORBIDDEN", "your name and photo come from your profile")
    # A new global name: stored as the account's, but no team room takes it; other rooms do.
    await member.request("PUT", f"/v3/profile/{quote(member.user_id)}/displayname", {"displayname": "Countess"})

    async def outside_renamed() -> bool:
        return await shown(owner, outside) == "Countess"

    await wait_until(outside_renamed, what="the room outside the team to show the new name")
    admin = Admin(bridge, http)
    for room_id in [team.space_id, *rooms]:
        assert await shown(owner, room_id) == "Ada Lovelace"
        names = {
            e["content"].get("displayname")
            for e in _touching(await admin.events(room_id), "m.room.member", member.user_id)
        }
        assert not names & {"Boss", "Countess"}, names


@pytest.mark.promise("P1")
async def test_with_the_bridge_down_the_homeserver_refuses_a_hand_made_invite_to_team_rooms(
    guarded_bridges: Bridges, guarded: Guarded, person
) -> None:
    """Issue 23: the module fails open, so while the bridge is down the homeserver's own power
    levels keep outsiders out: only the bot may invite, open the join rule or the history."""
    bridge = await _start(guarded_bridges, guarded)
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner", "member"))
    outsider = await person("outsider")
    general = rooms[0]
    await member.send_text(general, "said before the bridge stopped")
    front = guarded.homeserver.front
    front.down = True
    try:
        await guarded_bridges.stop(bridge)
        for room_id in (team.space_id, general):
            invite = owner.request("POST", f"/v3/rooms/{quote(room_id)}/invite", {"user_id": outsider.user_id})
            await _refused(invite, "M_FORBIDDEN", "permission to invite")
            await _refused(outsider.join(room_id), "M_FORBIDDEN", "")
            levels = await owner.state(room_id, "m.room.power_levels")
            # Nor can the owner open the room, its history, or lower the invite level.
            opened = owner.set_state(room_id, "m.room.join_rules", "", {"join_rule": "public"})
            await _refused(opened, "M_FORBIDDEN", "")
            readable = owner.set_state(
                room_id, "m.room.history_visibility", "", {"history_visibility": "world_readable"}
            )
            await _refused(readable, "M_FORBIDDEN", "")
            await _refused(
                owner.set_state(room_id, "m.room.power_levels", "", {**levels, "invite": 50}), "M_FORBIDDEN", ""
            )
        with pytest.raises(MatrixError) as unread:
            await outsider.messages(general)
        assert unread.value.status == 403
        # The bridge's people are unaffected: members still talk.
        await member.send_text(general, "the bridge is down and the room stays ours")
    finally:
        front.down = False


@pytest.mark.promise("P1")
async def test_an_outsider_let_in_through_an_old_room_while_the_bridge_was_down_is_removed_as_a_non_member(
    guarded_bridges: Bridges, guarded: Guarded, person, http: aiohttp.ClientSession
) -> None:
    """A room whose power levels predate issue 23 (admins could invite) until the bridge's next
    start: an outsider let in meanwhile is removed, told they are not a member of the team, and
    the start puts the invite level back."""
    bridge = await _start(guarded_bridges, guarded)
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner", "member"))
    outsider = await person("outsider")
    general = rooms[0]
    front = guarded.homeserver.front
    front.down = True  # the homeserver keeps what it could not deliver, as for a real stopped bridge
    try:
        await guarded_bridges.stop(bridge)
        levels = await owner.state(general, "m.room.power_levels")
        old = {**levels, "invite": 50}
        url = f"{guarded.homeserver.url}/_matrix/client/v3/rooms/{quote(general)}/state/m.room.power_levels"
        auth = {"Authorization": f"Bearer {bridge.settings.appservice.as_token}"}
        async with http.put(url, json=old, headers=auth) as resp:
            assert resp.status == 200, await resp.text()
        # Fail-open and the old level: the invite and the join are stored.
        await owner.request("POST", f"/v3/rooms/{quote(general)}/invite", {"user_id": outsider.user_id})
        await outsider.join(general)
        assert outsider.user_id in await owner.joined_members(general)
        await _start(guarded_bridges, guarded)
    finally:
        front.down = False

    async def removed() -> dict | None:
        event = await owner.state(general, "m.room.member", outsider.user_id)
        return event if event["membership"] == "leave" else None

    event = await wait_until(removed, timeout=90, what="the outsider to be removed once the bridge is back")
    assert f"is not a member of the team {team.name}" in event["reason"], event
    assert "integration" not in event["reason"].split(":")[0], event

    async def put_back() -> bool:
        return (await owner.state(general, "m.room.power_levels"))["invite"] > 100

    await wait_until(put_back, what="the start to put the invite level back")
    await _refused(outsider.join(general), "M_FORBIDDEN", "only its members may join")


@pytest.mark.promise("P12")
async def test_under_require_an_encrypted_team_room_takes_no_plaintext_and_only_the_bot_sets_encryption(
    guarded_bridges: Bridges, guarded: Guarded, person, http: aiohttp.ClientSession
) -> None:
    bridge = await _start(guarded_bridges, guarded, policy__encryption="require")
    owner, member, team, rooms = await team_with_member(bridge, person, accepted=("owner", "member"))
    general = rooms[0]
    assert (await owner.state(general, "m.room.encryption"))["algorithm"] == "m.megolm.v1.aes-sha2"
    admin = Admin(bridge, http)

    plaintext = member.send_text(general, "this would be stored in the clear")
    await _refused(plaintext, "M_FORBIDDEN", "end-to-end encrypted")
    assert not _touching(await admin.events(general), "m.room.message", body="this would be stored in the clear")
    # What an encrypting client sends passes (the homeserver never sees inside it).
    ciphertext = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEn...",
        "session_id": "s",
        "device_id": "D",
        "sender_key": "k",
    }
    await member.request("PUT", f"/v3/rooms/{quote(general)}/send/m.room.encrypted/{secrets.token_hex(4)}", ciphertext)

    # The owner's level would allow it; the team's policy does not.
    weaker = {"algorithm": "m.megolm.v1.aes-sha2", "rotation_period_ms": 365 * 86_400_000}
    await _refused(owner.set_state(general, "m.room.encryption", "", weaker), "M_FORBIDDEN", "set by the team's policy")
    assert (await owner.state(general, "m.room.encryption")).get("rotation_period_ms") != weaker["rotation_period_ms"]
