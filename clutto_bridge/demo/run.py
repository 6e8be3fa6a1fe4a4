"""``clutto-bridge demo``: Synapse and the bridge on this machine, with a demo team to look at."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from clutto_bridge.demo.synapse import LocalSynapse, free_port, synapse_available

INSTALL_HINT = (
    "The demo needs Synapse, which comes with the 'demo' extra:\n"
    "    pip install 'clutto-bridge[demo]'\n"
    "or, from a checkout:  python3 scripts/dev.py demo"
)


def run_demo(folder: Path | None, port: int) -> int:
    if not synapse_available():
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    if _port_taken(port):
        print(f"Port {port} is in use; pick another with --port.", file=sys.stderr)
        return 1
    temporary = folder is None
    folder = Path(tempfile.mkdtemp(prefix="clutto-demo-")) if temporary else folder.resolve()
    if not temporary and folder.exists() and any(folder.iterdir()):
        print(f"{folder} is not empty; the demo needs an empty or new folder.", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    from clutto_bridge.logs import setup_logging

    setup_logging("INFO", str(folder / "bridge.log"))
    logging.getLogger().handlers[0].setLevel(logging.WARNING)  # keep the terminal for the summary
    try:
        return asyncio.run(_demo(folder, port))
    except KeyboardInterrupt:
        return 0
    except Exception as e:
        logging.getLogger("clutto.demo").debug("Demo failed", exc_info=True)
        print(f"The demo failed: {type(e).__name__}: {e}\nSee {folder / 'bridge.log'}.", file=sys.stderr)
        return 1
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _demo(folder: Path, port: int) -> int:
    from clutto_bridge.app import Bridge
    from clutto_bridge.demo.setup import bridge_settings, write_registration

    synapse = LocalSynapse(folder / "synapse", port=port)
    settings = bridge_settings(folder, synapse, free_port())
    registration = write_registration(folder, settings)
    print(f"Starting Synapse on {synapse.url} (files in {folder}) …")
    synapse.write_config([registration])
    await asyncio.to_thread(synapse.start)
    bridge = Bridge(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # As an operator would: the bot becomes a homeserver admin before the bridge starts.
        bot = await synapse.register_appservice_user(settings.appservice.as_token, settings.appservice.bot_username)
        admin = await synapse.register_user("demo-admin", admin=True)
        await synapse.make_admin(admin.access_token, bot)
        await bridge.start()
        alice = await synapse.register_user("alice")
        bob = await synapse.register_user("bob")
        team = await bridge.teams.create("Demo Team", owner=alice.user_id)
        await bridge.members.invite(team, bob.user_id, "member", actor=alice.user_id)
        view = await bridge.teams.view(team)
        _print_summary(synapse, settings, [alice, bob], view)
        await stop.wait()
    finally:
        print("\nStopping the bridge and Synapse …")
        await bridge.stop(grace=5)
        await asyncio.to_thread(synapse.stop)
    return 0


def _print_summary(synapse, settings, users, view) -> None:
    rooms = ", ".join(r.name for r in view.rooms)
    lines = [
        "",
        "clutto-bridge demo is running.",
        f"  Homeserver URL for any Matrix client: {synapse.url}",
        "  (in Element: Sign in > Edit homeserver > enter the URL above)",
        "",
        "  Demo users:",
        *[f"    {u.user_id}  password: {u.password}" for u in users],
        "",
        f"  Team '{view.team.name}' (space {view.team.space_id}) with rooms: {rooms}",
        "  Accept the invites to see the space and its rooms.",
        f"  Talk to the bot: start a direct chat with {settings.bot_mxid} and send 'help'.",
        f"  Provisioning API: http://127.0.0.1:{settings.appservice.port}/_clutto/v1 "
        f"(Bearer {settings.provisioning.shared_secret})",
        "",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
