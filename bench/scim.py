"""Benchmark: an identity provider's initial sync through SCIM against the same people added
with ``POST /teams/{id}/members`` (issue 27).

A throwaway Synapse and the bridge in its own process. Each round makes two fresh teams and
provisions ``--users`` new accounts into each: once through the provisioning API (the baseline),
once as a provider's sync does it (``GET /Users?filter=userName eq`` then ``POST /Users`` per
person, then ``--groups`` groups: the role group admins, a tenth of the people, in one PATCH,
and the other groups as rooms, ``POST /Groups`` with their members, everyone in one of them).
Rounds alternate the order. Prints users per second of each (SCIM's with its groups), their
ratio (goal: SCIM >= 0.9x) and the bridge's resident memory before and after each phase.

    .venv/bin/python bench/scim.py [--users 1000] [--groups 10] [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import bridge_for, make_bot_admin  # noqa: E402

from clutto_bridge.demo.synapse import LocalSynapse  # noqa: E402

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def api_round(http, bridge, team_id: str, users: int, tag: str) -> float:
    started = time.perf_counter()
    for i in range(users):
        body = {"username": f"a{tag}{i}", "email": f"a{tag}{i}@example.com", "password": secrets.token_urlsafe(12)}
        async with http.post(f"{bridge.api}/teams/{team_id}/members", json=body, headers=bridge.auth) as resp:
            assert resp.status == 201, await resp.text()
    return users / (time.perf_counter() - started)


async def scim_round(http, base: str, token: str, users: int, groups: int, tag: str) -> float:
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    ids = []
    started = time.perf_counter()
    for i in range(users):
        name = f"s{tag}{i}@example.com"
        async with http.get(f"{base}/Users", params={"filter": f'userName eq "{name}"'}, headers=auth) as resp:
            assert resp.status == 200 and (await resp.json(content_type=None))["totalResults"] == 0
        body = {
            "schemas": [USER],
            "userName": name,
            "externalId": f"x{tag}{i}",
            "active": True,
            "name": {"givenName": "Bench", "familyName": f"User {i}"},
            "emails": [{"value": name, "primary": True}],
            "phoneNumbers": [{"value": "+1 555 0100"}],
        }
        async with http.post(f"{base}/Users", json=body, headers=auth) as resp:
            assert resp.status == 201, await resp.text()
            ids.append((await resp.json(content_type=None))["id"])
    users_done = time.perf_counter()
    # The groups: a tenth of the people are admins; the other groups are rooms, everyone in one.
    admins = ids[: max(1, len(ids) // 10)]
    ops = [{"op": "add", "path": "members", "value": [{"value": i} for i in admins]}]
    async with http.patch(f"{base}/Groups/admins", json={"schemas": [PATCH], "Operations": ops}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
    rooms = max(0, groups - 1)
    for g in range(rooms):
        body = {"schemas": [GROUP], "displayName": f"Group {tag}{g}", "members": [{"value": i} for i in ids[g::rooms]]}
        async with http.post(f"{base}/Groups", json=body, headers=auth) as resp:
            assert resp.status == 201, await resp.text()
    ended = time.perf_counter()
    print(f"  SCIM users {users / (users_done - started):.1f}/s, then {groups} groups in {ended - users_done:.1f}s")
    return users / (ended - started)


async def main(users: int, groups: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        synapse = LocalSynapse(folder / "synapse")
        bridge = bridge_for(synapse, folder)
        synapse.write_config(
            [folder / "registration.yaml"],
            extra={
                "rc_invites": {
                    "per_room": {"per_second": 10000, "burst_count": 10000},
                    "per_user": {"per_second": 10000, "burst_count": 10000},
                    "per_issuer": {"per_second": 10000, "burst_count": 10000},
                }
            },
        )
        await asyncio.to_thread(synapse.start)
        try:
            await make_bot_admin(synapse, bridge)
            owner = await synapse.register_user("owner")
            bridge.start()
            async with aiohttp.ClientSession() as http:
                await bridge.ready(http)
                base = bridge.api.replace("/_clutto/v1", "/_clutto/scim/v2")
                api_rates, scim_rates = [], []
                print(
                    f"{users} users, {groups} groups, {rounds} round(s); bridge RSS at start: {rss_mb(bridge.process.pid):.0f} MB"
                )
                for r in range(rounds):
                    teams = []
                    for kind in ("api", "scim"):
                        async with http.post(
                            f"{bridge.api}/teams",
                            json={"name": f"Bench {kind} {r}", "owner": owner.user_id},
                            headers=bridge.auth,
                        ) as resp:
                            teams.append((await resp.json())["id"])
                    async with http.post(
                        f"{bridge.api}/teams/{teams[1]}/scim/tokens", json={"name": "bench"}, headers=bridge.auth
                    ) as resp:
                        token = (await resp.json())["token"]
                    order = ("api", "scim") if r % 2 == 0 else ("scim", "api")
                    for kind in order:
                        before = rss_mb(bridge.process.pid)
                        if kind == "api":
                            api_rates.append(await api_round(http, bridge, teams[0], users, f"{r}x"))
                        else:
                            scim_rates.append(await scim_round(http, base, token, users, groups, f"{r}x"))
                        print(
                            f"round {r + 1} {kind:4}: {(api_rates if kind == 'api' else scim_rates)[-1]:6.1f} users/s, "
                            f"bridge RSS {before:.0f} -> {rss_mb(bridge.process.pid):.0f} MB"
                        )
                a, s = statistics.median(api_rates), statistics.median(scim_rates)
                spread = lambda xs: f"{min(xs):.1f}..{max(xs):.1f}"  # noqa: E731
                print(
                    f"POST /members: median {a:.1f} users/s ({spread(api_rates)}); SCIM: median {s:.1f} users/s "
                    f"({spread(scim_rates)}); SCIM/API {s / a:.2f}x (goal >= 0.9x)"
                )
        finally:
            bridge.stop()
            synapse.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="5 users in 3 groups, 1 round: does it run at all")
    args = parser.parse_args()
    if args.smoke:
        args.users, args.groups, args.rounds = 5, 3, 1
    asyncio.run(main(args.users, args.groups, args.rounds))
