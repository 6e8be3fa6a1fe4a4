"""The provisioning API as an operator's script uses it."""

from __future__ import annotations

import aiohttp
import pytest
from yarl import URL

from clutto_bridge.app import Bridge
from tests.integration.conftest import unique
from tests.integration.openapi_check import ResponseChecker

_checker: ResponseChecker | None = None


class Api:
    """The provisioning API as a script calls it; every answer is checked against the served OpenAPI document."""

    def __init__(self, bridge: Bridge, http: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/v1"
        self.auth = {"Authorization": f"Bearer {bridge.settings.provisioning.shared_secret}"}
        self.operator = dict(self.auth)
        self.http = http

    async def call(
        self, method: str, path: str, *, json=None, data=None, headers=None, encoded: bool = False,
    ) -> tuple[int, dict]:
        """``encoded``: send ``path`` exactly as written (``%2f`` and ``..`` included), not normalised."""
        url = URL(self.base + path, encoded=True) if encoded else self.base + path
        async with self.http.request(
            method, url, json=json, data=data, headers=self.auth if headers is None else headers
        ) as resp:
            status, body = resp.status, await resp.json(content_type=None)
        (await self.checker()).check(method, path, status, body)
        return status, body

    async def checker(self) -> ResponseChecker:
        global _checker
        if _checker is None:
            operator = getattr(self, "operator", self.auth)  # test_retention builds an Api without __init__
            async with self.http.get(self.base + "/openapi.json", headers=operator) as resp:
                assert resp.status == 200
                _checker = ResponseChecker(await resp.json())
        return _checker


@pytest.fixture
def api(bridge: Bridge, http: aiohttp.ClientSession) -> Api:
    return Api(bridge, http)


async def test_requests_without_the_secret_are_refused(api: Api) -> None:
    for path in ("/teams", "/openapi.json", "/teams/t123"):
        status, body = await api.call("GET", path, headers={})
        assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
        status, body = await api.call("GET", path, headers={"Authorization": "Bearer not-the-secret"})
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    status, body = await api.call("POST", "/teams", json={"name": "x", "owner": "@a:localhost"}, headers={})
    assert status == 401


async def test_operator_creates_team_and_owner_sees_it(api: Api, new_user) -> None:
    owner = await new_user("owner")
    guest = await new_user("guest")
    name = unique("Wayne Enterprises")
    status, team = await api.call("POST", "/teams", json={"name": name, "owner": owner.user_id})
    assert status == 201, team
    assert team["name"] == name and team["owner"] == owner.user_id and team["state"] == "active"
    assert [r["name"] for r in team["rooms"]] == ["general", "random"]
    assert team["members"] == [{"user_id": owner.user_id, "role": "owner", "membership": "invited"}]
    assert team["trial_ends_at"] > team["created_at"]

    status, body = await api.call("POST", f"/teams/{team['id']}/members", json={"user_id": guest.user_id, "role": "guest"})
    assert (status, body) == (201, {"user_id": guest.user_id, "role": "guest", "membership": "invited"})
    await guest.wait_for_invites({team["space_id"], *(r["room_id"] for r in team["rooms"])})
    await guest.join(team["space_id"])
    assert {r.get("name") for r in await guest.hierarchy(team["space_id"])} >= {name, "general", "random"}

    status, fetched = await api.call("GET", f"/teams/{team['id']}")
    assert status == 200 and fetched["space_id"] == team["space_id"]
    status, listing = await api.call("GET", "/teams")
    assert status == 200 and team["id"] in [t["id"] for t in listing["teams"]]


async def test_bad_requests_get_clear_errors_and_change_nothing(api: Api, new_user) -> None:
    owner = await new_user("owner")
    name = unique("Stark")
    status, team = await api.call("POST", "/teams", json={"name": name, "owner": owner.user_id})
    assert status == 201
    cases = [
        ("POST", "/teams", {"data": "{not json"}, 400, "M_NOT_JSON"),
        ("POST", "/teams", {"json": ["a", "list"]}, 400, "M_BAD_JSON"),
        ("POST", "/teams", {"json": {"owner": owner.user_id}}, 400, "M_MISSING_PARAM"),
        ("POST", "/teams", {"json": {"name": 42, "owner": owner.user_id}}, 400, "M_INVALID_PARAM"),
        ("POST", "/teams", {"json": {"name": "   ", "owner": owner.user_id}}, 400, "M_INVALID_PARAM"),
        ("POST", "/teams", {"json": {"name": "x" * 81, "owner": owner.user_id}}, 400, "M_INVALID_PARAM"),
        ("POST", "/teams", {"json": {"name": "Bad\u0007Name", "owner": owner.user_id}}, 400, "M_INVALID_PARAM"),
        ("POST", "/teams", {"json": {"name": unique("A"), "owner": "alice"}}, 400, "M_INVALID_PARAM"),
        ("POST", "/teams", {"json": {"name": unique("A"), "owner": "@nobody-here:localhost"}}, 404, "M_NOT_FOUND"),
        ("POST", "/teams", {"json": {"name": unique("A"), "owner": "@alice:elsewhere.example"}}, 403, "M_FORBIDDEN"),
        ("POST", "/teams", {"json": {"name": name.lower(), "owner": owner.user_id}}, 409, "IO.CLUTTO.TEAM_EXISTS"),
        ("GET", "/teams/tdoesnotexist", {}, 404, "M_NOT_FOUND"),
        ("GET", "/nothing-here", {}, 404, "M_UNRECOGNIZED"),
        ("DELETE", "/teams", {}, 405, "M_UNRECOGNIZED"),
        ("POST", f"/teams/{team['id']}/members", {"json": {"user_id": "@x:localhost", "role": "king"}}, 400, "M_INVALID_PARAM"),
        ("POST", f"/teams/{team['id']}/members", {"json": {"user_id": owner.user_id, "role": "owner"}}, 400, "M_INVALID_PARAM"),
        ("POST", f"/teams/{team['id']}/members", {"json": {"user_id": owner.user_id}}, 409, "IO.CLUTTO.CONFLICT"),
        ("POST", f"/teams/{team['id']}/members", {"json": {"user_id": "@ghost-1:localhost"}}, 404, "M_NOT_FOUND"),
        ("POST", f"/teams/{team['id']}/members", {"json": {"user_id": "@ghost:nowhere.invalid"}}, 404, "M_NOT_FOUND"),
        ("POST", "/teams/tnope/members", {"json": {"user_id": owner.user_id}}, 404, "M_NOT_FOUND"),
    ]
    for method, path, kwargs, want_status, want_errcode in cases:
        status, body = await api.call(method, path, **kwargs)
        assert (status, body.get("errcode")) == (want_status, want_errcode), (method, path, kwargs, body)
        assert body["error"], body
    status, listing = await api.call("GET", "/teams")
    assert [t["name"] for t in listing["teams"]] == [name]
    assert [m["user_id"] for m in listing["teams"][0]["members"]] == [owner.user_id]


async def test_openapi_document_describes_what_is_served(api: Api) -> None:
    status, doc = await api.call("GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/openapi.json", "/notices", "/promises", "/reports/usage", "/teams/{team_id}/email", "/teams", "/teams/{team_id}", "/teams/{team_id}/members",
        "/teams/{team_id}/members/{user_id}", "/teams/{team_id}/transfer",
        "/teams/{team_id}/rooms", "/teams/{team_id}/rooms/{room}", "/teams/{team_id}/direct",
        "/teams/{team_id}/integrations", "/teams/{team_id}/retention", "/teams/{team_id}/retention/preview",
        "/teams/{team_id}/retention/sweep", "/teams/{team_id}/jobs/{job_id}", "/teams/{team_id}/hold",
        "/teams/{team_id}/plan", "/teams/{team_id}/export-setting", "/teams/{team_id}/exports", "/teams/{team_id}/encryption",
        "/teams/{team_id}/exports/{job_id}/{path}", "/teams/{team_id}/consent", "/policy", "/users/{user_id}/profile", "/users/{user_id}/consent",
        "/users/{user_id}/contacts/permission", "/users/{user_id}/contacts", "/users/{user_id}/data", "/keys",
        "/teams/{team_id}/scim/tokens", "/teams/{team_id}/scim/tokens/{token_id}",
    }
    for path, methods in doc["paths"].items():
        for method in methods:
            concrete = path.replace("{team_id}", "tmissing").replace("{user_id}", "@x:localhost").replace("{room}", "r").replace("{job_id}", "1").replace("{path}", "manifest.json").replace("{token_id}", "t")
            status, body = await api.call(method.upper(), concrete, json={})
            assert body.get("errcode") != "M_UNRECOGNIZED", (method, path, body)


async def test_out_of_range_path_parameters_are_404_and_405_names_the_allowed_methods(api: Api, new_user) -> None:
    owner = await new_user("owner")
    status, team = await api.call("POST", "/teams", json={"name": unique("Range"), "owner": owner.user_id})
    assert status == 201
    for path in (
        f"/teams/{team['id']}/jobs/9223372036854775808",
        f"/teams/{team['id']}/jobs/99999999999999999999999",
        f"/teams/{team['id']}/jobs/0",
        f"/teams/{team['id']}/jobs/-1",
        f"/teams/{team['id']}/exports/18446744073709551616/manifest.json",
    ):
        status, body = await api.call("GET", path)
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND"), (path, body)
    async with api.http.request("DELETE", api.base + "/teams", headers=api.auth) as resp:
        assert resp.status == 405
        assert set(resp.headers["Allow"].split(",")) == {"GET", "POST"}
