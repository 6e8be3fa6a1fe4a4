"""Operator subcommands that act on a running bridge through its provisioning API.

The bridge owns the homeserver connection and the job runner; the CLI only asks it and
shows progress, so an operation started here survives the terminal closing.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp

from clutto_bridge.config import Settings
from clutto_bridge.web.health import HEALTH_PATH
from clutto_bridge.web.provisioning import PREFIX


class OperationError(Exception):
    """What the bridge refused, or why it could not be reached: one line for the operator."""


def _local_host(settings: Settings) -> str:
    host = settings.appservice.hostname
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


class BridgeClient:
    def __init__(self, settings: Settings) -> None:
        self.base = f"http://{_local_host(settings)}:{settings.appservice.port}{PREFIX}"
        self.headers = {"Authorization": f"Bearer {settings.provisioning.shared_secret}"}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            async with aiohttp.ClientSession() as session:
                async with session.request(method, self.base + path, json=body, headers=self.headers) as resp:
                    data = await resp.json(content_type=None)
        except aiohttp.ClientError as e:
            raise OperationError(f"cannot reach the bridge at {self.base} ({e}); is it running?") from None
        if resp.status >= 400:
            raise OperationError(f"{data.get('errcode', resp.status)}: {data.get('error', 'request failed')}")
        return data


async def health(settings: Settings, timeout: float) -> int:
    """``clutto-bridge health``, the Dockerfile's HEALTHCHECK: 0 when the bridge's event loop
    answers ``/_clutto/health`` within ``timeout`` and its self-check passed. The bridge on this
    host is probed, so with TLS its certificate (made for the public name) is not verified."""
    tls = settings.appservice.tls.enabled
    url = f"{'https' if tls else 'http'}://{_local_host(settings)}:{settings.appservice.port}{HEALTH_PATH}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url, ssl=False if tls else True) as resp:
                body = await resp.json(content_type=None)
    except TimeoutError:
        raise OperationError(f"the bridge at {url} did not answer within {timeout:g} s: it is hung") from None
    except (aiohttp.ClientError, ValueError) as e:
        raise OperationError(f"cannot reach the bridge at {url} ({e}); is it running?") from None
    if resp.status != 200:
        error = body.get("error", "") if isinstance(body, dict) else ""
        raise OperationError(f"the bridge at {url} answered {resp.status}: {error}".rstrip(": "))
    print("ok")
    return 0


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width if total == 0 else int(width * done / total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def render_progress(job: dict) -> str:
    p = job.get("progress", {})
    rooms = p.get("rooms") or []
    done = min(p.get("room_index", 0), len(rooms))
    text = (
        f"{_bar(done, len(rooms))} {done}/{len(rooms)} rooms, {p.get('removed', p.get('redacted', 0))} events removed"
    )
    if p.get("media_deleted"):
        text += f", {p['media_deleted']} media deleted"
    if p.get("sessions_deleted"):
        text += f", {p['sessions_deleted']} encryption keys deleted"
    if p.get("held"):
        text += f", {len(p['held'])} held"
    return text


async def retention_preview(client: BridgeClient, team: str) -> int:
    data = await client.call("POST", f"/teams/{team}/retention/preview")
    print(f"A sweep now would remove {data['events']} events in {data['rooms_affected']} rooms:")
    for room in data["rooms"]:
        print(f"  {room['name']:<30} {'held' if room['held'] else room['events']}")
    return 0


async def retention_sweep(client: BridgeClient, team: str, poll: float = 0.5) -> int:
    job = await client.call("POST", f"/teams/{team}/retention/sweep")
    print(f"Sweep #{job['id']} of team {team}")
    shown = ""
    tty = sys.stdout.isatty()
    while True:
        job = await client.call("GET", f"/teams/{team}/jobs/{job['id']}")
        line = render_progress(job)
        if line != shown:
            print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
            shown = line
        if job["state"] in ("done", "failed"):
            break
        await asyncio.sleep(poll)
    if tty:
        print()
    if job["state"] == "failed":
        print(f"Sweep failed: {job['error']}", file=sys.stderr)
        return 1
    if job["progress"].get("redaction_only"):
        print("Warning: the homeserver admin API is not available; events were redacted, not purged.", file=sys.stderr)
    return 0


async def retention_status(client: BridgeClient, team: str) -> int:
    data = await client.call("GET", f"/teams/{team}/retention")
    print(f"Maximum lifetime: {data['max_lifetime_seconds'] // 86400}d; purge available: {data['purge_available']}")
    if data["holds"]:
        print("Legal holds: " + ", ".join(h or "whole team" for h in data["holds"]))
    for job in data["sweeps"][:5]:
        print(f"  sweep #{job['id']} {job['state']}: {render_progress(job)}")
    if any(room["kept"] or room["deleted"] for room in data.get("sessions", [])):
        print("The bot's encryption keys (Megolm sessions) per room:")
        for room in data["sessions"]:
            print(f"  {room['name'] or room['room_id']:<30} {room['kept']} kept, {room['deleted']} deleted")
    return 0


async def set_plan(client: BridgeClient, team: str, plan: str) -> int:
    data = await client.call("PUT", f"/teams/{team}/plan", {"plan": plan})
    print(f"Team {data['name']} ({team}) is now on the {data['plan']} plan.")
    return 0


async def usage_report(client: BridgeClient) -> int:
    data = await client.call("GET", "/reports/usage")
    print(f"Teams and members per sign-up week, plan and size (cells under k={data['k']} suppressed)")
    if data["cells"]:
        print(f"  {'week':<10} {'plan':<6} {'size':>7} {'teams':>6} {'members':>8}")
    for cell in data["cells"]:
        print(f"  {cell['week']:<10} {cell['plan']:<6} {cell['size']:>7} {cell['teams']:>6} {cell['members']:>8}")
    print(f"{data['suppressed_cells']} cell(s) suppressed.")
    return 0
