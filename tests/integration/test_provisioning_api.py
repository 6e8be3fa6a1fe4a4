"""The provisioning API as an operator's script uses it."""

from __future__ import annotations

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from tests.integration.conftest import unique
from tests.integration.helpers import Api


@pytest.fixture
def api(bridge: Bridge, http: aiohttp.ClientSession) -> Api:
    return Api(bridge, http)


# One database: the secret is checked before any handler runs.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
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

    status, body = await api.call(
        "POST", f"/teams/{team['id']}/members", json={"user_id": guest.user_id, "role": "guest"}
    )
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
        (
            "POST",
            f"/teams/{team['id']}/members",
            {"json": {"user_id": "@x:localhost", "role": "king"}},
            400,
            "M_INVALID_PARAM",
        ),
        (
            "POST",
            f"/teams/{team['id']}/members",
            {"json": {"user_id": owner.user_id, "role": "owner"}},
            400,
            "M_INVALID_PARAM",
        ),
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


# One database: which routes are served, not what they store.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_openapi_document_describes_what_is_served(api: Api) -> None:
    status, doc = await api.call("GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/openapi.json",
        "/notices",
        "/promises",
        "/reports/usage",
        "/teams/{team_id}/email",
        "/teams",
        "/teams/{team_id}",
        "/teams/{team_id}/members",
        "/teams/{team_id}/members/{user_id}",
        "/teams/{team_id}/transfer",
        "/teams/{team_id}/rooms",
        "/teams/{team_id}/rooms/{room}",
        "/teams/{team_id}/direct",
        "/teams/{team_id}/integrations",
        "/teams/{team_id}/retention",
        "/teams/{team_id}/retention/preview",
        "/teams/{team_id}/retention/sweep",
        "/teams/{team_id}/jobs/{job_id}",
        "/teams/{team_id}/hold",
        "/teams/{team_id}/plan",
        "/teams/{team_id}/export-setting",
        "/teams/{team_id}/exports",
        "/teams/{team_id}/encryption",
        "/teams/{team_id}/exports/{job_id}/{path}",
        "/teams/{team_id}/consent",
        "/policy",
        "/users/{user_id}/profile",
        "/users/{user_id}/consent",
        "/users/{user_id}/contacts/permission",
        "/users/{user_id}/contacts",
        "/users/{user_id}/data",
        "/keys",
        "/teams/{team_id}/scim/tokens",
        "/teams/{team_id}/scim/tokens/{token_id}",
    }
    for path, methods in doc["paths"].items():
        for method in methods:
            concrete = (
                path.replace("{team_id}", "tmissing")
                .replace("{user_id}", "@x:localhost")
                .replace("{room}", "r")
                .replace("{job_id}", "1")
                .replace("{path}", "manifest.json")
                .replace("{token_id}", "t")
            )
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
