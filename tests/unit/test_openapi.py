"""The OpenAPI document is generated from what is routed; bodies are checked before handlers run."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clutto_bridge.crypto.http_signatures import SigningKeys
from clutto_bridge.web import outputs as o
from clutto_bridge.web.provisioning import PREFIX, ProvisioningAPI

SECRET = "s3cret"
KEYS = SigningKeys(Ed25519PrivateKey.generate())
AUTH = {"Authorization": f"Bearer {SECRET}"}


class Recorder:
    """Any service: every method call is recorded and answers with what the test planted."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.answers = answers or {}

    def __getattr__(self, name: str):
        async def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return self.answers.get(name)

        return call


def fake_services(**services: Recorder) -> SimpleNamespace:
    names = (
        "teams",
        "members",
        "rooms",
        "integrations",
        "details",
        "retention",
        "lifecycle",
        "notices",
        "consent",
        "profiles",
        "onboarding",
        "contacts",
        "mydata",
        "usage",
        "email",
        "homeserver",
        "encryption",
        "scim",
    )
    homeserver = SimpleNamespace(address="http://127.0.0.1:1", domain="localhost")
    return SimpleNamespace(
        **{n: services.get(n, Recorder()) for n in names}, settings=SimpleNamespace(homeserver=homeserver)
    )


def routed(app: web.Application) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info()
        path = info.get("path") or info["formatter"]
        pairs.add((route.method.lower(), path))
    return pairs


def documented(doc: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, ops in doc["paths"].items() for method in ops}


def test_every_route_is_documented_and_every_documented_operation_is_routed() -> None:
    api = ProvisioningAPI(fake_services(), SECRET, keys=KEYS)
    assert routed(api.app) == documented(api.document)
    assert len(routed(api.app)) == 48


def test_the_document_is_valid_json_schema_throughout() -> None:
    doc = ProvisioningAPI(fake_services(), SECRET, keys=KEYS).document
    assert doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    refs = _refs(doc["paths"]) | _refs(doc["components"])
    assert {r.removeprefix("#/components/schemas/") for r in refs} <= set(doc["components"]["schemas"])


def test_every_operation_documents_its_success_and_the_error_shape() -> None:
    doc = ProvisioningAPI(fake_services(), SECRET, keys=KEYS).document
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            statuses = set(op["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            if op.get("security") == []:  # public key material only
                assert path == "/keys" and "401" not in statuses
                continue
            assert {"401", "default"} <= statuses, (method, path)
            if "{team_id}" in path:
                assert {"403", "404"} <= statuses, (method, path)


def test_job_schema_lists_every_field_a_job_returns() -> None:
    from clutto_bridge.db.job import Job

    job = Job(1, "export", "t1", "done", {}, {"path": "/x"}, 1, 0, None, None, 0, 0, None)
    doc = ProvisioningAPI(fake_services(), SECRET, keys=KEYS).document
    schema = {**doc["components"]["schemas"]["Job"], "components": doc["components"]}
    sent = o.Job.of(job).model_dump(mode="json")
    jsonschema.validate(sent, schema)
    assert set(schema["properties"]) == set(sent)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


@pytest.fixture
async def client():
    teams = Recorder()
    api = ProvisioningAPI(fake_services(teams=teams), SECRET, keys=KEYS)
    outer = web.Application()
    outer.add_subapp(PREFIX, api.app)
    async with TestClient(TestServer(outer)) as c:
        c.teams = teams
        yield c


@pytest.mark.parametrize(
    ("body", "errcode", "words"),
    [
        ("{not json", "M_NOT_JSON", "not valid JSON"),
        ("[1, 2]", "M_BAD_JSON", "JSON object"),
        ('{"owner": "@a:localhost"}', "M_MISSING_PARAM", "'name'"),
        ('{"name": 42, "owner": "@a:localhost"}', "M_INVALID_PARAM", "'name'"),
        ('{"name": "A", "owner": "@a:localhost", "colour": "red"}', "M_INVALID_PARAM", "Unknown field 'colour'"),
        ('{"name": "A"}', "M_MISSING_PARAM", "'owner'"),
        ('{"name": ' + "[" * 1000 + "]" * 1000 + "}", "M_BAD_JSON", "nests deeper than 64 levels"),
        ('{"name": ' + "[" * 64 + "]" * 64 + "}", "M_BAD_JSON", "nests deeper than 64 levels"),
        (b'{"name": "\xff"}', "M_NOT_JSON", "not UTF-8"),
    ],
)
async def test_a_body_that_does_not_fit_is_refused_before_the_domain_is_asked(client, body, errcode, words) -> None:
    resp = await client.post(f"{PREFIX}/teams", data=body, headers={**AUTH, "Content-Type": "application/json"})
    answer = await resp.json()
    assert (resp.status, answer["errcode"]) == (400, errcode)
    assert words in answer["error"]
    assert client.teams.calls == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "guest"}, "'user_id'"),
        ({"username": "new", "email": "n@example.com"}, "'password'"),
    ],
)
async def test_new_member_is_either_an_invite_or_a_new_account(client, body, field) -> None:
    resp = await client.post(f"{PREFIX}/teams/t1/members", json=body, headers=AUTH)
    answer = await resp.json()
    assert (resp.status, answer["errcode"]) == (400, "M_MISSING_PARAM") and field in answer["error"]


async def test_query_parameters_are_checked_too(client) -> None:
    resp = await client.delete(f"{PREFIX}/teams/t1/members/@a:localhost?deactivate=maybe", headers=AUTH)
    answer = await resp.json()
    assert (resp.status, answer["errcode"]) == (400, "M_INVALID_PARAM") and "deactivate" in answer["error"]
    resp = await client.delete(f"{PREFIX}/teams/t1/integrations", headers=AUTH)
    assert (resp.status, (await resp.json())["errcode"]) == (400, "M_MISSING_PARAM")


async def test_the_served_document_is_the_generated_one_and_needs_the_secret(client) -> None:
    resp = await client.get(f"{PREFIX}/openapi.json")
    assert resp.status == 401
    resp = await client.get(f"{PREFIX}/openapi.json", headers=AUTH)
    doc = await resp.json()
    assert resp.status == 200 and "/teams/{team_id}/exports/{job_id}/{path}" in doc["paths"]


async def test_every_answer_is_signed_even_refusals_and_the_keys_need_no_token(client) -> None:
    from tests.unit.test_signing import Message, verifier_from

    resp = await client.get(f"{PREFIX}/keys")
    assert resp.status == 200
    verifier = verifier_from((await resp.json())["keys"][0])
    answers = [
        resp,
        await client.get(f"{PREFIX}/teams"),  # 401
        await client.get(f"{PREFIX}/no-such-thing", headers=AUTH),  # 404
        await client.post(f"{PREFIX}/teams", data="{x", headers={**AUTH, "Content-Type": "application/json"}),  # 400
        await client.get(f"{PREFIX}/openapi.json", headers=AUTH),
    ]
    assert [a.status for a in answers] == [200, 401, 404, 400, 200]
    for answer in answers:
        body = await answer.read()
        verifier.verify(
            Message(answer.headers, status_code=answer.status),
            body=body,
            require_components=("@status", "content-type", "content-digest"),
        )
