"""The provisioning API under schemathesis: generated requests, as the operator and as a
member, never get a 5xx and every answer matches the served OpenAPI document; and the SCIM
endpoints under generated bodies and queries (hypothesis), never a 5xx and SCIM 400s for malformed
bodies.

A bounded run (a few examples per operation) is part of the test command; a longer one for
release checks is ``bench/api_fuzz.py``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.integration.conftest import Bridges, unique

EXAMPLES = 6


def known_ids(path: Path, team_id: str, user_id: str) -> Path:
    """Point path parameters at a real team and member, so requests reach the domain, not a 404."""
    path.write_text(f'[parameters]\n"path.team_id" = "{team_id}"\n"path.user_id" = "{user_id}"\n')
    return path


def schemathesis_command(
    schema: Path, base: str, token: str, examples: int, seed: int, config: Path | None = None
) -> list[str]:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    return [
        exe,
        *(["--config-file", str(config)] if config else []),
        "run",
        str(schema),
        "--url",
        base,
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error,response_schema_conformance,status_code_conformance",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--phases",
        "examples,fuzzing",
        "--workers",
        "1",
        "--no-shrink",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--output-truncate",
        "false",
    ]


async def run_schemathesis(command: list[str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return process.returncode, output.decode(errors="replace")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_generated_requests_never_get_a_server_error_or_leave_the_schema(
    bridges: Bridges, new_user, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    bridge = await bridges.start()
    owner, member = await new_user("owner"), await new_user("member")
    team = await bridge.teams.create(unique("Fuzz"), owner=owner.user_id)
    await bridge.members.invite(team, member.user_id, actor=None)
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/v1"
    secret = bridge.settings.provisioning.shared_secret
    async with http.get(base + "/openapi.json", headers={"Authorization": f"Bearer {secret}"}) as resp:
        schema = tmp_path / "openapi.json"
        schema.write_text(json.dumps(await resp.json()))
    grant = await member.request("POST", f"/v3/user/{quote(member.user_id)}/openid/request_token", {})
    config = known_ids(tmp_path / "schemathesis.toml", team.id, member.user_id)
    # The member first: the operator's run may remove them from the team.
    for who, token in (("member", grant["access_token"]), ("operator", secret)):
        for ids in (None, config):  # random identifiers, then the real team and member
            command = schemathesis_command(schema, base, token, EXAMPLES, seed=20261125, config=ids)
            code, output = await run_schemathesis(command)
            assert code == 0, f"schemathesis as {who} found problems:\n{output[-6000:]}"


# --- SCIM (/_clutto/scim/v2) --------------------------------------------------------------------
# SCIM has no OpenAPI document of its own, and its routes are not in the provisioning API's route
# table (they answer with SCIM error bodies, not the API's): schemathesis cannot read them. Hypothesis
# generates the bodies and queries instead, shaped like what providers send and plain junk, and
# every answer must be no 5xx; every refusal a SCIM error; a body that is not the object a route
# takes a SCIM 400.

SCIM_EXAMPLES = 80
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _scim_bodies() -> st.SearchStrategy:
    scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    junk = st.recursive(
        scalar,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=12,
    )
    keys = st.sampled_from(
        [
            "schemas",
            "userName",
            "name",
            "active",
            "emails",
            "title",
            "externalId",
            "id",
            "displayName",
            "members",
            "Operations",
            "op",
            "path",
            "value",
            "givenName",
            "familyName",
            "meta",
            "filter",
        ]
    )
    shaped = st.dictionaries(keys, junk, max_size=6)
    operation = st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "Replace", "remove", "frob", ""]) | junk},
        optional={
            "path": st.sampled_from(["active", "name.givenName", "members", 'members[value eq "x"]', "emails[", ""])
            | junk,
            "value": junk,
        },
    )
    patch = st.fixed_dictionaries(
        {"schemas": st.just(["urn:ietf:params:scim:api:messages:2.0:PatchOp"]), "Operations": st.lists(operation)}
    )
    return shaped | patch | junk


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_generated_scim_requests_never_get_a_server_error(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    bridge = await bridges.start()
    owner = await new_user("owner")
    team = await bridge.teams.create(unique("ScimFuzz"), owner=owner.user_id)
    _, secret = await bridge.scim.new_token(team, "Fuzz", actor=owner.user_id)
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/scim/v2"
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}
    async with http.post(
        base + "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": unique("fz").lower(),
            "name": {"givenName": "F", "familyName": "Z"},
        },
        headers=headers,
    ) as resp:
        assert resp.status == 201
        user_id = (await resp.json(content_type=None))["id"]
    routes = [
        ("POST", "/Users"),
        ("PUT", f"/Users/{user_id}"),
        ("PATCH", f"/Users/{user_id}"),
        ("POST", "/Groups"),
        ("PATCH", "/Groups/admins"),
        ("PUT", "/Groups/members"),
        ("POST", "/.search"),
        ("POST", "/Users/.search"),
    ]
    loop = asyncio.get_running_loop()
    seen: list[tuple[str, str, int]] = []

    async def call(method: str, path: str, body: bytes | None, query: dict | None) -> tuple[int, str]:
        async with http.request(method, base + path, data=body, params=query, headers=headers) as resp:
            return resp.status, await resp.text()

    def check(method: str, path: str, body: bytes | None, query: dict | None = None) -> int:
        status, text = asyncio.run_coroutine_threadsafe(call(method, path, body, query), loop).result(60)
        assert status < 500, (method, path, body, query, status, text)
        if status >= 400 and status != 405:
            error = json.loads(text)
            assert error["schemas"] == [ERROR] and error["status"] == str(status), text
        seen.append((method, path, status))
        return status

    @settings(max_examples=SCIM_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(route=st.sampled_from(routes), body=_scim_bodies())
    def bodies(route: tuple[str, str], body: object) -> None:
        status = check(*route, json.dumps(body).encode())
        if not isinstance(body, dict):
            assert status == 400, (route, body, status)

    @settings(max_examples=SCIM_EXAMPLES // 2, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(raw=st.binary(max_size=64))
    def raw_bytes(raw: bytes) -> None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        status = check("POST", "/Users", raw)
        if not isinstance(parsed, dict):
            assert status == 400, (raw, status)

    @settings(max_examples=SCIM_EXAMPLES // 2, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(
        path=st.sampled_from(["/Users", "/Groups", f"/Users/{user_id}", "/Groups/admins"]),
        query=st.dictionaries(
            st.sampled_from(["filter", "startIndex", "count", "attributes", "excludedAttributes", "sortBy"]),
            st.text(max_size=30),
            max_size=3,
        ),
    )
    def queries(path: str, query: dict) -> None:
        check("GET", path, None, query)

    for run in (bodies, raw_bytes, queries):
        await asyncio.to_thread(run)
    statuses = {status for *_, status in seen}
    assert len(seen) >= SCIM_EXAMPLES and 400 in statuses and statuses & {200, 201}, sorted(statuses)
