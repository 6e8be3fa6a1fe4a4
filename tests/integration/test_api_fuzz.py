"""The provisioning API under schemathesis: generated requests, as the operator and as a
member, never get a 5xx and every answer matches the served OpenAPI document.

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
