"""SCIM 2.0 provisioning (issue 27) against the real Synapse: an identity provider's life cycle of
a person, as the person and their teammates see it in Matrix; tokens kept per team; what
providers really send; malformed bodies; and scim2-tester's compliance checks.

One team and bridge per test, several steps per test: the life cycle is one story."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import pytest
from mautrix.util.async_db import Scheme

from clutto_bridge.app import Bridge
from tests.integration.conftest import unique
from tests.integration.matrix_client import MatrixClient, MatrixError, wait_until

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PHONE = "+1 555 0100 7788"
PASSWORD = "a-password-of-their-own"


class Scim:
    """A provider's client: one team's token, the base URL, JSON in and out."""

    def __init__(self, bridge: Bridge, http: aiohttp.ClientSession, secret: str) -> None:
        self.base = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/scim/v2"
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}
        self.http = http

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict | None = None, raw: bytes | None = None
    ) -> tuple[int, Any, Any]:
        async with self.http.request(
            method,
            self.base + path,
            json=body if raw is None else None,
            data=raw,
            headers={**self.headers, **(headers or {})},
        ) as resp:
            text = await resp.text()
            data = None
            if text:
                data = await resp.json(content_type=None)
            if resp.status >= 400:
                assert resp.status < 500, (method, path, resp.status, text)
                assert data["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], data
                assert data["status"] == str(resp.status), data
            assert "Signature" in resp.headers  # signed like every API response (P13)
            return resp.status, data, resp.headers


async def _level(client: MatrixClient, room_id: str, user_id: str) -> int:
    levels = await client.state(room_id, "m.room.power_levels")
    return levels.get("users", {}).get(user_id, levels.get("users_default", 0))


async def _scim_team(bridge: Bridge, new_user) -> tuple[MatrixClient, Any, list[str], str]:
    owner = await new_user("owner")
    team = await bridge.teams.create(unique("Scim"), owner=owner.user_id)
    rooms = [r.room_id for r in (await bridge.teams.view(team)).rooms]
    await owner.wait_for_invites({team.space_id, *rooms})
    for room_id in [team.space_id, *rooms]:
        await owner.join(room_id)
    _, secret = await bridge.scim.new_token(team, "Okta", actor=owner.user_id)
    return owner, team, rooms, secret


async def _joined_everywhere(client: MatrixClient, room_ids: list[str]) -> None:
    await client.wait_for_invites(set(room_ids))
    for room_id in room_ids:
        await client.join(room_id)


@pytest.mark.promise("P3")
@pytest.mark.promise("P9")
async def test_a_providers_life_cycle_of_a_person(
    bridge: Bridge,
    new_user,
    http: aiohttp.ClientSession,
    homeserver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    owner, team, rooms, secret = await _scim_team(bridge, new_user)
    everywhere = [team.space_id, *rooms]
    scim = Scim(bridge, http, secret)
    local = f"ada{int(time.time() * 1000) % 10**8}"

    # Create, as Entra ID sends it: string booleans, extra attributes Clutto does not keep.
    status, user, headers = await scim.call(
        "POST",
        "/Users",
        {
            "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": f"{local.capitalize()}@Example.COM",
            "externalId": "ext-1",
            "active": "True",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
            "title": "Engineer",
            "emails": [{"value": f"{local}@example.com", "type": "work", "primary": True}],
            "phoneNumbers": [{"value": PHONE, "type": "mobile"}],
            "addresses": [{"streetAddress": "12 Analytical Row", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "EMP-4711-QX",
                "manager": {"value": "x"},
            },
        },
    )
    assert status == 201, user
    assert user["externalId"] == "ext-1" and user["active"] is True and user["title"] == "Engineer"
    assert "phoneNumbers" not in user and "addresses" not in user
    assert headers["ETag"] == user["meta"]["version"] and headers["Location"].endswith(user["id"])
    user_id = f"@{local}:{bridge.settings.homeserver.domain}"

    # Lookups as providers make them: mixed-case filters on userName, emails and externalId.
    for flt in (
        f'userName eq "{local}@example.com"',
        f'USERNAME Eq "{local.upper()}@EXAMPLE.COM"',
        f'emails.value eq "{local}@example.com"',
        'externalId eq "ext-1"',
    ):
        status, found, _ = await scim.call("GET", f"/Users?filter={flt}")
        assert status == 200 and found["totalResults"] == 1 and found["Resources"][0]["id"] == user["id"], (flt, found)
    status, found, _ = await scim.call("GET", '/Users?filter=externalId eq "EXT-1"')
    assert found["totalResults"] == 0  # externalId is case-exact
    status, found, _ = await scim.call("GET", f"/Users/{user['id']}?attributes=userName")
    assert set(found) - {"schemas", "id", "meta"} == {"userName"}

    # The person sees the invites, with the name from the provider.
    member_client = await _login_provisioned(bridge, homeserver, http, user_id)
    await _joined_everywhere(member_client, everywhere)
    assert (await bridge.profiles.get(user_id))["first_name"] == "Ada"

    # Add to a group: admins. Power level 50 in every team room.
    status, group, _ = await scim.call(
        "PATCH",
        "/Groups/admins",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "Add", "path": "members", "value": [{"value": user["id"]}]}],
        },
    )
    assert status == 200 and [m["value"] for m in group["members"]] == [user["id"]]
    for room_id in everywhere:
        assert await _level(owner, room_id, user_id) == 50
    # The new role is a new version of the user: the provider's If-Match on the old one fails.
    status, admin, headers = await scim.call("GET", f"/Users/{user['id']}")
    assert [g["value"] for g in admin["groups"]] == ["admins"]
    assert admin["meta"]["version"] != user["meta"]["version"] and headers["ETag"] == admin["meta"]["version"]

    # Rename (Okta: PATCH without a path) and ETag preconditions.
    status, _, _ = await scim.call(
        "PATCH",
        f"/Users/{user['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "value": {"name": {"givenName": "Augusta"}}}],
        },
        headers={"If-Match": user["meta"]["version"]},
    )
    assert status == 412
    status, renamed, _ = await scim.call(
        "PATCH",
        f"/Users/{user['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "value": {"name.givenName": "Augusta"}}],
        },
        headers={"If-Match": admin["meta"]["version"]},
    )
    assert (
        status == 200
        and renamed["name"]["givenName"] == "Augusta"
        and renamed["meta"]["version"] != admin["meta"]["version"]
    )
    assert (await bridge.profiles.get(user_id))["first_name"] == "Augusta"

    # Deactivate (Okta's value object): out of every team room by the time the response comes,
    # so well within the second the issue asks for. Looked up at once, never polled (a timing
    # assert on the lookups themselves would measure the machine's load, not the bridge).
    status, off, _ = await scim.call(
        "PATCH",
        f"/Users/{user['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
    )
    assert status == 200 and off["active"] is False and "groups" not in off
    for room_id in everywhere:
        assert user_id not in await owner.joined_members(room_id)
        levels = await owner.state(room_id, "m.room.power_levels")
        assert user_id not in levels.get("users", {})
    entries = await bridge.audit.for_team(team.id, "member_removed")
    assert [e.actor for e in entries if e.target == user_id] == [
        f"scim:{(await bridge.scim.tokens(team, actor=None))[0].id}"
    ]

    # Reactivate (Entra ID: capitalised op, string boolean): invited again.
    status, on, _ = await scim.call(
        "PATCH",
        f"/Users/{user['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "Replace", "path": "active", "value": "True"}],
        },
    )
    assert status == 200 and on["active"] is True
    await _joined_everywhere(member_client, everywhere)

    # PUT replaces: the title goes.
    status, put, _ = await scim.call(
        "PUT",
        f"/Users/{user['id']}",
        {
            "schemas": [USER],
            "userName": user["userName"],
            "externalId": "ext-1",
            "active": True,
            "name": {"givenName": "Augusta", "familyName": "King"},
            "emails": user["emails"],
        },
    )
    assert status == 200 and "title" not in put and put["name"]["familyName"] == "King"

    # Delete: removed from the team, the resource gone.
    status, _, _ = await scim.call("DELETE", f"/Users/{user['id']}")
    assert status == 204
    assert (await scim.call("GET", f"/Users/{user['id']}"))[0] == 404
    for room_id in everywhere:
        assert user_id not in await owner.joined_members(room_id)

    # The phone number, address and employee number are in no table and no log line (each
    # written so that no hex address or random id in a debug line can contain it).
    await bridge.access.flush()
    assert PHONE not in caplog.text and "Analytical" not in caplog.text and "EMP-4711-QX" not in caplog.text
    for table in await _tables(bridge):
        for row in await bridge.db.fetch(f"SELECT * FROM {table}"):
            kept = repr(tuple(row))
            assert PHONE not in kept and "Analytical Row" not in kept and "EMP-4711-QX" not in kept, table


async def _provision(scim: Scim, local: str) -> dict:
    status, user, _ = await scim.call(
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": f"{local}@example.com",
            "name": {"givenName": local.capitalize(), "familyName": "Doe"},
            "emails": [{"value": f"{local}@example.com"}],
        },
    )
    assert status == 201, user
    return user


async def _background_updates_done(bridge: Bridge, homeserver, http: aiohttp.ClientSession) -> None:
    url = f"{homeserver.url}/_synapse/admin/v1/background_updates/status"
    headers = {"Authorization": f"Bearer {bridge.settings.appservice.as_token}"}

    async def done() -> bool:
        async with http.get(url, headers=headers) as resp:
            return not (await resp.json())["current_updates"]

    await wait_until(done, 120, "Synapse's background updates")


async def _sign_in(bridge: Bridge, homeserver, http: aiohttp.ClientSession, user_id: str) -> MatrixClient:
    """The person signs in with a password of their own (set as a reset would): a real session,
    which deactivation ends (an admin's login-as token is not one)."""
    url = f"{homeserver.url}/_synapse/admin/v2/users/{user_id}"
    headers = {"Authorization": f"Bearer {bridge.settings.appservice.as_token}"}
    async with http.put(url, json={"password": PASSWORD}, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
    return await MatrixClient.login(homeserver.url, user_id, PASSWORD, http)


async def test_with_scim_deactivate_a_leaver_loses_their_account_until_reactivated(
    bridges, new_user, http: aiohttp.ClientSession, homeserver
) -> None:
    bridge = await bridges.start(bridges.settings(scim__deactivate=True))
    owner, team, rooms, secret = await _scim_team(bridge, new_user)
    scim = Scim(bridge, http, secret)
    local = f"leaver{int(time.time() * 1000) % 10**8}"
    user = await _provision(scim, local)
    user_id = f"@{local}:{bridge.settings.homeserver.domain}"
    member = await _sign_in(bridge, homeserver, http, user_id)
    await _joined_everywhere(member, [team.space_id, *rooms])

    # Deactivated: out of the team, and the account is closed: the person's token no longer works,
    # nor does signing in again.
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    status, body, _ = await scim.call("PATCH", f"/Users/{user['id']}", off)
    assert status == 200 and body["active"] is False
    with pytest.raises(MatrixError) as refused:
        await member.request("GET", "/v3/account/whoami")
    assert refused.value.status == 401
    with pytest.raises(MatrixError) as refused:
        await MatrixClient.login(homeserver.url, user_id, PASSWORD, http)
    assert refused.value.status == 403  # Synapse forgets the password of a deactivated account
    assert await bridge.admin.is_deactivated(user_id)
    assert user_id not in await owner.joined_members(team.space_id)
    [removed] = [e for e in await bridge.audit.for_team(team.id, "member_removed") if e.target == user_id]
    assert removed.detail["deactivated"] is True

    # Active again: the account is reopened and invited back; the person can sign in again.
    # (A new Synapse builds the profile index reactivation needs in the background: wait for it.)
    await _background_updates_done(bridge, homeserver, http)
    on = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]}
    status, body, _ = await scim.call("PATCH", f"/Users/{user['id']}", on)
    assert status == 200 and body["active"] is True
    assert not await bridge.admin.is_deactivated(user_id)
    back = await _sign_in(bridge, homeserver, http, user_id)
    assert (await back.request("GET", "/v3/account/whoami"))["user_id"] == user_id
    await _joined_everywhere(back, [team.space_id, *rooms])

    # An account Clutto did not create is kept when its owner is deactivated (it is not Clutto's).
    outsider = await new_user("outsider")
    status, found, _ = await scim.call(
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": outsider.user_id[1:].split(":")[0],
            "name": {"givenName": "O", "familyName": "S"},
        },
    )
    assert status == 201, found
    await outsider.wait_for_invites({team.space_id})
    status, _, _ = await scim.call("PATCH", f"/Users/{found['id']}", off)
    assert status == 200
    assert (await outsider.request("GET", "/v3/account/whoami"))["user_id"] == outsider.user_id
    assert not await bridge.admin.is_deactivated(outsider.user_id)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_without_scim_deactivate_the_account_is_kept(
    bridge: Bridge, new_user, http: aiohttp.ClientSession, homeserver
) -> None:
    _, team, _, secret = await _scim_team(bridge, new_user)
    scim = Scim(bridge, http, secret)
    local = f"stayer{int(time.time() * 1000) % 10**8}"
    user = await _provision(scim, local)
    user_id = f"@{local}:{bridge.settings.homeserver.domain}"
    member = await _login_provisioned(bridge, homeserver, http, user_id)
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    assert (await scim.call("PATCH", f"/Users/{user['id']}", off))[0] == 200
    assert (await member.request("GET", "/v3/account/whoami"))["user_id"] == user_id
    assert await bridge.teams.role_of(team, user_id) is None


async def test_groups_are_rooms_of_the_space(bridges, new_user, http: aiohttp.ClientSession, homeserver) -> None:
    bridge = await bridges.start(bridges.settings(scim__room_groups=["random"]))
    owner, team, rooms, secret = await _scim_team(bridge, new_user)
    scim = Scim(bridge, http, secret)
    stamp = int(time.time() * 1000) % 10**8
    ada, bo = await _provision(scim, f"ada{stamp}"), await _provision(scim, f"bo{stamp}")
    domain = bridge.settings.homeserver.domain
    ada_id, bo_id = f"@ada{stamp}:{domain}", f"@bo{stamp}:{domain}"
    ada_client = await _login_provisioned(bridge, homeserver, http, ada_id)
    bo_client = await _login_provisioned(bridge, homeserver, http, bo_id)
    await _joined_everywhere(ada_client, [team.space_id, *rooms])
    await _joined_everywhere(bo_client, [team.space_id, *rooms])

    # A new group: a new room of the space, with only the group's members invited.
    status, design, _ = await scim.call(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Design", "members": [{"value": ada["id"]}]},
    )
    assert status == 201 and [m["value"] for m in design["members"]] == [ada["id"]]
    [room] = [r for r in await bridge.stores.rooms.of_team(team.id) if r.name == "Design"]
    assert room.room_id in {r["room_id"] for r in await ada_client.hierarchy(team.space_id)}
    await ada_client.wait_for_invites({room.room_id})
    await ada_client.join(room.room_id)
    assert room.room_id not in await bo_client.invited_rooms()
    # Its members are the group's: invite-only, not open to the space, so Bo (in the team and the
    # space, not in the group) does not see it in the space and is refused by the homeserver; the
    # gate would refuse him too.
    assert await ada_client.state(room.room_id, "m.room.join_rules") == {"join_rule": "invite"}
    assert room.room_id not in {r["room_id"] for r in await bo_client.hierarchy(team.space_id)}
    await _refused_join(bo_client, room.room_id)
    assert bo_id not in await ada_client.joined_members(room.room_id)
    refusal = await bridge.gate.join(bo_id, room.room_id)
    assert refusal is not None and refusal.rule == "group_join"
    [created] = [e for e in await bridge.audit.for_team(team.id, "room_created") if e.target == room.room_id]
    token_id = (await bridge.scim.tokens(team, actor=None))[0].id
    assert created.actor == f"scim:{token_id}"
    status, member, _ = await scim.call("GET", f"/Users/{ada['id']}")
    assert {"value": design["id"], "display": "Design"}.items() <= member["groups"][-1].items()

    # Bo added, Ada taken out: Bo is invited, Ada leaves the room (and stays in the team).
    status, changed, _ = await scim.call(
        "PATCH",
        f"/Groups/{design['id']}",
        {
            "schemas": [PATCH],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": bo["id"]}]},
                {"op": "remove", "path": f'members[value eq "{ada["id"]}"]'},
            ],
        },
        headers={"If-Match": design["meta"]["version"]},
    )
    assert status == 200 and [m["value"] for m in changed["members"]] == [bo["id"]]
    await bo_client.wait_for_invites({room.room_id})
    assert await bridge.gate.join(bo_id, room.room_id) is None  # in the group now
    await bo_client.join(room.room_id)
    assert await bo_client.joined_members(room.room_id) == {bridge.settings.bot_mxid, bo_id}
    assert await bridge.teams.role_of(team, ada_id) == "member"
    await _refused_join(ada_client, room.room_id)

    async def ada_refused_by_the_gate() -> bool:  # once the bridge has seen her leave the room
        return await bridge.gate.join(ada_id, room.room_id) is not None

    await wait_until(ada_refused_by_the_gate, 20, "the gate to refuse Ada, out of the group")
    # A later member of the team is not invited to the group's room.
    carl = await new_user("carl")
    await bridge.members.invite(team, carl.user_id, actor=owner.user_id)
    await carl.wait_for_invites({team.space_id, *rooms})
    assert room.room_id not in await carl.invited_rooms()

    # A group named in scim.room_groups takes over the team's room of that name.
    # It becomes invite-only, and Ada (provisioned, in the room, not in the group) is removed from
    # it; the owner, whom the provider does not know, stays. Carl's invite (still pending) is withdrawn.
    [random_room] = [r for r in await bridge.stores.rooms.of_team(team.id) if r.name == "random"]
    assert {ada_id, bo_id, owner.user_id} <= await owner.joined_members(random_room.room_id)
    status, taken, _ = await scim.call(
        "POST", "/Groups", {"schemas": [GROUP], "displayName": "Random", "members": [{"value": bo["id"]}]}
    )
    assert status == 201 and taken["displayName"] == "random"
    assert await bo_client.state(random_room.room_id, "m.room.join_rules") == {"join_rule": "invite"}
    joined = await owner.joined_members(random_room.room_id)
    assert {bo_id, owner.user_id} <= joined and ada_id not in joined
    assert random_room.room_id not in await carl.invited_rooms()
    await _refused_join(ada_client, random_room.room_id)
    [linked] = await bridge.audit.for_team(team.id, "scim_group_linked")
    assert linked.detail["removed"] == sorted([ada_id, carl.user_id])
    status, _, _ = await scim.call(
        "PATCH",
        f"/Groups/{taken['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "members", "value": []}]},
    )
    assert status == 200 and bo_id not in await owner.joined_members(random_room.room_id)
    # Any other room of the team is not the provider's.
    status, error, _ = await scim.call("POST", "/Groups", {"schemas": [GROUP], "displayName": "General"})
    assert status == 409 and "scim.room_groups" in error["detail"]

    # The group deleted: its room is archived, out of the space.
    assert (await scim.call("DELETE", f"/Groups/{design['id']}"))[0] == 204
    assert room.room_id not in {r["room_id"] for r in await owner.hierarchy(team.space_id)}
    assert (await scim.call("GET", f"/Groups/{design['id']}"))[0] == 404


async def _refused_join(client: MatrixClient, room_id: str) -> None:
    """The homeserver itself refuses the join (with or without the gate's module)."""
    with pytest.raises(MatrixError) as refused:
        await client.join(room_id)
    assert refused.value.status == 403 and refused.value.body["errcode"] == "M_FORBIDDEN", refused.value.body


async def _tables(bridge: Bridge) -> list[str]:
    if bridge.db.scheme != Scheme.SQLITE:
        rows = await bridge.db.fetch("SELECT tablename AS name FROM pg_tables WHERE schemaname='public'")
    else:
        rows = await bridge.db.fetch("SELECT name FROM sqlite_master WHERE type='table'")
    return [r["name"] for r in rows]


async def _login_provisioned(bridge: Bridge, homeserver, http: aiohttp.ClientSession, user_id: str) -> MatrixClient:
    """The provisioned person's Matrix client (signed in through the admin API, as SSO would)."""
    return MatrixClient(homeserver.url, user_id, await bridge.admin.login_as(user_id, 600), http)


async def test_tokens_teams_refusals_and_malformed_bodies(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    owner, team, rooms, secret = await _scim_team(bridge, new_user)
    other_owner = await new_user("other")
    other = await bridge.teams.create(unique("Other"), owner=other_owner.user_id)
    token_b, secret_b = await bridge.scim.new_token(other, "Entra", actor=other_owner.user_id)
    a, b = Scim(bridge, http, secret), Scim(bridge, http, secret_b)
    local = f"bo{int(time.time() * 1000) % 10**8}"
    status, user, _ = await a.call(
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": local,
            "name": {"givenName": "Bo", "familyName": "B"},
            "emails": [{"value": f"{local}@example.com"}],
        },
    )
    assert status == 201
    # Team B's token: team A's user does not exist for it.
    for method, body in (
        ("GET", None),
        ("PUT", {"schemas": [USER], "userName": "x", "name": {"givenName": "X", "familyName": "Y"}}),
        ("DELETE", None),
        ("PATCH", {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "title"}]}),
    ):
        assert (await b.call(method, f"/Users/{user['id']}", body))[0] == 404
    assert (await b.call("GET", "/Users"))[1]["totalResults"] == 0
    status, group, _ = await b.call("GET", "/Groups/members")
    assert status == 200 and "members" not in group
    assert (
        await b.call(
            "PATCH",
            "/Groups/admins",
            {
                "schemas": [PATCH],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}],
            },
        )
    )[0] == 400
    # No token, a forged one, a revoked one: 401.
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer clutto-scim.00000000.forged"},
        {"Authorization": f"Basic {secret}"},
    ):
        assert (await a.call("GET", "/Users", headers=headers))[0] == 401
    await bridge.scim.revoke_token(other, token_b.id, actor=other_owner.user_id)
    assert (await b.call("GET", "/ServiceProviderConfig"))[0] == 401
    listed = await bridge.scim.tokens(team, actor=owner.user_id)
    assert listed[0].last_used_at is not None and not hasattr(listed[0], "secret")
    assert secret not in repr(await bridge.db.fetch("SELECT * FROM scim_token"))

    # Malformed bodies and queries: SCIM 400s.
    for body, raw in (
        (None, b"{not json"),
        ([1, 2], None),
        ({"schemas": [USER]}, None),
        ({"schemas": [USER], "userName": 7, "name": {"givenName": "G", "familyName": "F"}, "emails": "x"}, None),
        ({"schemas": [USER], "userName": "!!!"}, None),
    ):
        status, error, _ = await a.call("POST", "/Users", body, raw=raw)
        assert status == 400, (body, error)
    for body in (
        {"Operations": []},
        {"schemas": [PATCH], "Operations": [{"op": "frobnicate", "path": "title"}]},
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "nosuch[", "value": 1}]},
    ):
        status, error, _ = await a.call("PATCH", f"/Users/{user['id']}", body)
        assert status == 400, (body, error)
    status, error, _ = await a.call("GET", "/Users?filter=userName eq")
    assert status == 400 and error["scimType"] == "invalidFilter"
    assert (await a.call("GET", "/Users?count=-3"))[0] in (200, 400)

    # Paging: startIndex/count.
    status, page, _ = await a.call("GET", "/Users?startIndex=1&count=0")
    assert status == 200 and page["totalResults"] == 1 and page.get("Resources", []) == []

    # A team under a legal hold, or being deleted, is refused.
    await bridge.retention.place_hold(team, None, "litigation", actor=None)
    status, error, _ = await a.call(
        "PATCH",
        f"/Users/{user['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert status == 403 and "legal hold" in error["detail"]
    await bridge.retention.lift_hold(team, None, actor=None)


# The SCIM layer is the same on either database (the life cycle above runs on both): once is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_scim2_tester_finds_no_failure(bridge: Bridge, new_user) -> None:
    import httpx2
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import check_server
    from scim2_tester.utils import Status

    _, team, _, secret = await _scim_team(bridge, new_user)
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/scim/v2"

    def run() -> list:
        with httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}) as http:
            client = SyncSCIMClient(http)
            client.discover()
            # Users: every check. Groups are the team's fixed roles (no creation or deletion through
            # SCIM), so their CRUD checks do not apply; tests/unit/test_scim_api.py covers their PATCH.
            return list(check_server(client, resource_types=["User"]))

    results = await asyncio.to_thread(run)
    failed = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    assert results and not failed, "\n".join(f"{r.title}: {r.reason}" for r in failed)
