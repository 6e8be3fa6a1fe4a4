#!/usr/bin/env python3
"""A longer schemathesis run against the provisioning API, for release checks.

The test suite runs a few examples per operation (tests/integration/test_api_fuzz.py);
this runs many, as the operator and as a member, with random identifiers and with a real
team and member, against a throwaway Synapse and the bridge as its own process. It exits
non-zero on any 5xx or any answer that leaves the OpenAPI document.

    .venv/bin/python bench/api_fuzz.py [--examples 200] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from harness import ROOT, bridge_for, make_bot_admin

sys.path.insert(0, str(ROOT))

from clutto_bridge.demo.synapse import LocalSynapse  # noqa: E402
from tests.integration.test_api_fuzz import known_ids, run_schemathesis, schemathesis_command  # noqa: E402


async def main(examples: int, seed: int, smoke: bool = False) -> int:
    folder = Path(tempfile.mkdtemp(prefix="clutto-fuzz-"))
    synapse = LocalSynapse(folder / "synapse")
    bridge = bridge_for(synapse, folder)
    synapse.write_config([folder / "registration.yaml"])
    synapse.start()
    failures = 0
    try:
        await make_bot_admin(synapse, bridge)
        bridge.start()
        async with aiohttp.ClientSession() as http:
            await bridge.ready(http)
            owner = await synapse.register_user("fuzz-owner")
            member = await synapse.register_user("fuzz-member")
            async with http.post(
                f"{bridge.api}/teams", json={"name": "Fuzz", "owner": owner.user_id}, headers=bridge.auth
            ) as resp:
                team = await resp.json()
            async with http.post(
                f"{bridge.api}/teams/{team['id']}/members", json={"user_id": member.user_id}, headers=bridge.auth
            ) as resp:
                resp.raise_for_status()
            async with http.get(f"{bridge.api}/openapi.json", headers=bridge.auth) as resp:
                schema = folder / "openapi.json"
                schema.write_text(json.dumps(await resp.json()))
            async with http.post(
                f"{synapse.url}/_matrix/client/v3/user/{quote(member.user_id)}/openid/request_token",
                json={},
                headers={"Authorization": f"Bearer {member.access_token}"},
            ) as resp:
                member_token = (await resp.json())["access_token"]
        config = known_ids(folder / "schemathesis.toml", team["id"], member.user_id)
        secret = bridge.settings.provisioning.shared_secret
        runs = [
            (who, token, ids)
            for who, token in (("member", member_token), ("operator", secret))
            for ids in (None, config)
        ]
        for who, token, ids in runs[-1:] if smoke else runs:  # the smoke size: the operator on the real team
            began = time.monotonic()
            code, output = await run_schemathesis(
                schemathesis_command(schema, bridge.api, token, examples, seed, config=ids)
            )
            label = f"{who}, {'real team' if ids else 'random ids'}"
            print(f"{label}: exit {code} in {time.monotonic() - began:.0f}s")
            if code != 0:
                failures += 1
                print(output[-8000:])
    finally:
        bridge.stop()
        synapse.stop()
    print(f"{failures} run(s) with problems; files in {folder}")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200, help="examples per operation and run")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.examples = 1
    sys.exit(asyncio.run(main(args.examples, args.seed, args.smoke)))
