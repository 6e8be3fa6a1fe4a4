"""The SCIM layer (web/scim.py) over an in-memory domain: what providers send is parsed, filtered,
patched and refused as RFC 7644 says, with SCIM error bodies and never a 500. The domain itself
(accounts, rooms, power levels) is tested on the real Synapse in tests/integration/test_scim.py."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clutto_bridge.crypto.http_signatures import SigningKeys
from clutto_bridge.db.scim import ScimGroup, ScimToken, ScimUser
from clutto_bridge.domain.errors import Conflict, NotFound
from clutto_bridge.domain.scim import GROUPS, ProvisionedUser, UserFields
from clutto_bridge.domain.scim_rooms import RoomGroup
from clutto_bridge.web.scim import ScimAPI

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SECRET = "clutto-scim.t1.secret"


class FakeScim:
    """The ScimService's surface, in memory: one team, one token."""

    def __init__(self) -> None:
        self.token = ScimToken("t1", "team1", "Okta", "x", None, 0)
        self.rows: dict[str, ScimUser] = {}
        self.fields: dict[str, UserFields] = {}
        self.roles: dict[str, str | None] = {}
        self.stored: list[UserFields] = []
        self.room_groups = FakeRoomGroups(self)

    @staticmethod
    def actor(token):
        return f"scim:{token.id}"

    async def authenticate(self, secret: str):
        return self.token if secret == SECRET else None

    async def user(self, team, scim_id):
        if scim_id not in self.rows:
            raise NotFound("no such user")
        return self.rows[scim_id]

    async def users(self, team):
        return list(self.rows.values())

    async def user_by_name(self, team, name):
        return next((r for r in self.rows.values() if r.user_name.casefold() == name.casefold()), None)

    async def view(self, row):
        return ProvisionedUser(row, self.fields[row.id], self.roles[row.id] if row.active is not False else None)

    async def create_user(self, team, fields, token):
        if await self.user_by_name(team, fields.user_name):
            raise Conflict("taken")
        row = ScimUser(str(uuid.uuid4()), "team1", "@x:h", fields.user_name, fields.external_id, fields.active, 1, 0, 0)
        self.rows[row.id], self.fields[row.id], self.roles[row.id] = row, fields, "member"
        self.stored.append(fields)
        return row

    async def update_user(self, team, row, fields, token):
        row.user_name, row.external_id, row.active = fields.user_name, fields.external_id, fields.active
        row.version += 1
        self.fields[row.id] = fields
        self.stored.append(fields)
        return row

    async def delete_user(self, team, row, token):
        del self.rows[row.id]

    async def group_members(self, team, group):
        return [r for r in self.rows.values() if r.active is not False and self.roles[r.id] == GROUPS[group]]

    async def set_group(self, team, group, ids, token):
        unknown = ids - self.rows.keys()
        if unknown:
            from clutto_bridge.domain.errors import InvalidInput

            raise InvalidInput("unknown")
        for rid in self.rows:
            if rid in ids:
                self.roles[rid] = GROUPS[group]
            elif self.roles[rid] == GROUPS[group] and group != "members":
                self.roles[rid] = "member"


class FakeRoomGroups:
    """Groups that are rooms, in memory: a name and the users' ids."""

    def __init__(self, scim: FakeScim) -> None:
        self.scim = scim
        self.groups: dict[str, tuple[ScimGroup, str, set[str]]] = {}

    def _view(self, group_id):
        row, name, ids = self.groups[group_id]
        return RoomGroup(row, name, [u for u in self.scim.rows.values() if u.id in ids])

    async def all(self, team):
        return [self._view(g) for g in self.groups]

    async def get(self, team, group_id):
        return self._view(group_id) if group_id in self.groups else None

    async def of_user(self, user):
        return [(g, name) for g, (_, name, ids) in self.groups.items() if user.id in ids]

    async def create(self, team, name, ids, *, actor):
        if name.casefold() in GROUPS or any(n.casefold() == name.casefold() for _, n, _ in self.groups.values()):
            raise Conflict("exists")
        row = ScimGroup(str(uuid.uuid4()), "team1", "!room:h", 1, 0, 0)
        self.groups[row.id] = (row, name, set(ids))
        return self._view(row.id)

    async def set_members(self, team, row, ids, *, actor):
        if ids != self.groups[row.id][2]:
            row.version += 1
        self.groups[row.id] = (row, self.groups[row.id][1], set(ids))

    async def delete(self, team, row, *, actor):
        del self.groups[row.id]


class FakeTeams:
    async def get(self, team_id):
        return SimpleNamespace(id=team_id, name="Team")


@pytest.fixture
async def client(tmp_path):
    fake = FakeScim()
    keys = SigningKeys(Ed25519PrivateKey.generate())
    api = ScimAPI(fake, FakeTeams(), keys=keys)
    async with TestClient(TestServer(api.app)) as c:
        c.fake = fake
        yield c
    assert fake.token  # the one team's token served every request


async def call(client, method, path, body=None, raw=None, headers=None, auth=True):
    h = {
        "Content-Type": "application/scim+json",
        **({"Authorization": f"Bearer {SECRET}"} if auth else {}),
        **(headers or {}),
    }
    resp = await client.request(method, path, json=body if raw is None else None, data=raw, headers=h)
    text = await resp.text()
    data = await resp.json(content_type=None) if text else None
    assert resp.status < 500, text
    if resp.status >= 400:
        assert data["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and data["status"] == str(resp.status)
    return resp.status, data, resp.headers


async def test_what_providers_send_is_understood(client) -> None:
    status, user, headers = await call(
        client,
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": "Ada@Example.com",
            "externalId": "E1",
            "active": "False",
            "name": {"givenName": "Ada", "familyName": "L", "formatted": "Ada L"},
            "title": "Eng",
            "emails": [{"value": "ada@example.com", "type": "work", "primary": "True"}],
            "phoneNumbers": [{"value": "+15550100"}],
            "addresses": [{"streetAddress": "Row 12"}],
        },
    )
    assert status == 201, user
    assert client.fake.stored[-1] == UserFields("Ada@Example.com", "E1", "Ada", "L", "Eng", "ada@example.com", False)
    assert "phoneNumbers" not in user and headers["ETag"] == user["meta"]["version"]
    for flt in (
        'userName eq "ada@example.com"',
        'USERNAME EQ "ADA@EXAMPLE.COM"',
        'emails.value eq "ada@example.com"',
        'externalId eq "E1"',
        'externalid Eq "E1"',
    ):
        status, found, _ = await call(client, "GET", f"/Users?filter={flt}")
        assert status == 200 and found["totalResults"] == 1, (flt, found)
    assert (await call(client, "GET", '/Users?filter=externalId eq "e1"'))[1]["totalResults"] == 0
    uid = user["id"]
    # Okta: value object without a path; Entra: capitalised op, string boolean.
    status, on, _ = await call(
        client,
        "PATCH",
        f"/Users/{uid}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True, "name.givenName": "Augusta"}}]},
    )
    assert status == 200 and on["active"] is True and on["name"]["givenName"] == "Augusta"
    status, off, _ = await call(
        client,
        "PATCH",
        f"/Users/{uid}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}, {"op": "Remove", "path": "title"}],
        },
    )
    assert status == 200 and off["active"] is False and "title" not in off
    assert (
        await call(
            client,
            "PATCH",
            f"/Users/{uid}",
            {"schemas": [PATCH], "Operations": [{"op": "add", "path": "name.familyName", "value": "K"}]},
            headers={"If-Match": 'W/"1"'},
        )
    )[0] == 412
    status, got, headers = await call(client, "GET", f"/Users/{uid}?attributes=userName,externalId")
    assert set(got) - {"schemas", "id", "meta"} == {"userName", "externalId"}
    assert (await call(client, "DELETE", f"/Users/{uid}"))[0] == 204
    assert (await call(client, "GET", f"/Users/{uid}"))[0] == 404


async def test_groups_are_roles(client) -> None:
    _, user, _ = await call(
        client,
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": "bo",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "b@x.org"}],
        },
    )
    version = user["meta"]["version"]
    status, group, _ = await call(
        client,
        "PATCH",
        "/Groups/admins",
        {"schemas": [PATCH], "Operations": [{"op": "Add", "path": "members", "value": [{"value": user["id"]}]}]},
    )
    assert status == 200 and [m["value"] for m in group["members"]] == [user["id"]]
    assert client.fake.roles[user["id"]] == "admin"
    # A new role is a new version of the user: an If-Match on the old one fails.
    _, admin, headers = await call(client, "GET", f"/Users/{user['id']}")
    assert admin["meta"]["version"] != version and headers["ETag"] == admin["meta"]["version"]
    assert [g["value"] for g in admin["groups"]] == ["admins"]
    replace = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]}
    assert (await call(client, "PATCH", f"/Users/{user['id']}", replace, headers={"If-Match": version}))[0] == 412
    status, group, _ = await call(
        client,
        "PATCH",
        "/Groups/admins",
        {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{user["id"]}"]'}]},
    )
    assert status == 200 and "members" not in group and client.fake.roles[user["id"]] == "member"
    status, listed, _ = await call(client, "GET", '/Groups?filter=displayName eq "members"')
    assert listed["totalResults"] == 1 and listed["Resources"][0]["members"][0]["value"] == user["id"]
    assert (await call(client, "GET", "/Groups/owners"))[0] == 404
    assert (await call(client, "DELETE", "/Groups/admins"))[0] == 403
    rename = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "bosses"}]}
    assert (await call(client, "PATCH", "/Groups/admins", rename))[0] == 400


async def test_other_groups_are_rooms(client) -> None:
    _, user, _ = await call(
        client,
        "POST",
        "/Users",
        {"schemas": [USER], "userName": "cy", "name": {"givenName": "C", "familyName": "Y"}},
    )
    group = "urn:ietf:params:scim:schemas:core:2.0:Group"
    for body in ({"schemas": [group]}, {"schemas": [group], "displayName": "  "}, [1]):
        assert (await call(client, "POST", "/Groups", body))[0] == 400, body
    assert (await call(client, "POST", "/Groups", {"schemas": [group], "displayName": "Admins"}))[0] == 409
    status, design, headers = await call(
        client, "POST", "/Groups", {"schemas": [group], "displayName": "Design", "members": [{"value": user["id"]}]}
    )
    assert status == 201 and design["displayName"] == "Design" and headers["Location"].endswith(design["id"])
    assert [m["value"] for m in design["members"]] == [user["id"]]
    _, listed, _ = await call(client, "GET", '/Groups?filter=displayName eq "design"')
    assert [g["id"] for g in listed["Resources"]] == [design["id"]]
    _, member, _ = await call(client, "GET", f"/Users/{user['id']}")
    assert {"value": design["id"], "display": "Design", "type": "direct"} in [
        {k: g[k] for k in ("value", "display", "type")} for g in member["groups"]
    ]
    status, emptied, _ = await call(
        client,
        "PATCH",
        f"/Groups/{design['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]},
        headers={"If-Match": design["meta"]["version"]},
    )
    assert status == 200 and "members" not in emptied and emptied["meta"]["version"] != design["meta"]["version"]
    _, after, _ = await call(client, "GET", f"/Users/{user['id']}")
    assert after["meta"]["version"] != member["meta"]["version"]
    assert (await call(client, "DELETE", f"/Groups/{design['id']}"))[0] == 204
    assert (await call(client, "GET", f"/Groups/{design['id']}"))[0] == 404


async def test_refusals_are_scim_errors(client) -> None:
    assert (await call(client, "GET", "/Users", auth=False))[0] == 401
    assert (await call(client, "GET", "/Users", headers={"Authorization": "Bearer nope"}))[0] == 401
    for body, raw in (
        (None, b"{nope"),
        ([1], None),
        ({"schemas": [USER]}, None),
        ({"schemas": [USER], "userName": 5, "name": {"givenName": "G", "familyName": "F"}, "emails": "x"}, None),
        ({"schemas": [USER], "userName": "  "}, None),
    ):
        status, error, _ = await call(client, "POST", "/Users", body, raw=raw)
        assert status == 400, (body, error)
    _, user, _ = await call(
        client,
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": "cy",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "c@x.org"}],
        },
    )
    assert (
        await call(
            client,
            "POST",
            "/Users",
            {
                "schemas": [USER],
                "userName": "CY",
                "name": {"givenName": "G", "familyName": "F"},
                "emails": [{"value": "c@x.org"}],
            },
        )
    )[1]["scimType"] == "uniqueness"
    for body in (
        {"Operations": []},
        {"schemas": [PATCH], "Operations": [{"op": "frob", "path": "title"}]},
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "nosuch[", "value": 1}]},
        [1],
    ):
        assert (await call(client, "PATCH", f"/Users/{user['id']}", body))[0] == 400, body
    status, error, _ = await call(client, "GET", "/Users?filter=userName eq")
    assert status == 400 and error["scimType"] == "invalidFilter"
    assert (await call(client, "GET", "/Users?sortBy=userName"))[0] == 400
    assert (await call(client, "GET", "/Nothing"))[0] == 404
    assert (await call(client, "PATCH", "/ServiceProviderConfig", {}))[0] == 405
    status, page, _ = await call(client, "GET", "/Users?startIndex=2&count=1")
    assert status == 200 and page["totalResults"] == 1 and page["startIndex"] == 2 and not page.get("Resources")


async def test_discovery_declares_only_what_is_kept(client) -> None:
    status, schemas, _ = await call(client, "GET", "/Schemas")
    user = next(s for s in schemas["Resources"] if s["id"] == USER)
    assert {a["name"] for a in user["attributes"]} == {"userName", "name", "title", "active", "emails", "groups"}
    status, config, _ = await call(client, "GET", "/ServiceProviderConfig")
    assert config["patch"]["supported"] and config["etag"]["supported"] and not config["bulk"]["supported"]
    status, types, _ = await call(client, "GET", "/ResourceTypes")
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    assert (await call(client, "GET", "/ResourceTypes/User"))[0] == 200
    assert (await call(client, "GET", f"/Schemas/{USER}"))[0] == 200


async def test_searches_by_post(client) -> None:
    await call(
        client,
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": "dee",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "d@x.org"}],
        },
    )
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName eq "DEE"',
        "attributes": ["userName"],
    }
    for path in ("/Users/.search", "/.search"):
        status, found, _ = await call(client, "POST", path, search)
        assert (
            status == 200
            and found["totalResults"] == 1
            and set(found["Resources"][0]) - {"schemas", "id", "meta"} == {"userName"}
        )
    status, found, _ = await call(client, "POST", "/Groups/.search", {"filter": 'displayName eq "admins"'})
    assert status == 200 and found["totalResults"] == 1
    assert (await call(client, "POST", "/.search", [1]))[0] == 400


def test_each_token_has_its_own_bucket() -> None:
    from clutto_bridge.web.scim import TokenBuckets

    buckets = TokenBuckets(rate=1.0, burst=3)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") > 0  # the fourth at once waits
    assert buckets.take("b") == 0.0  # another token is not held back
