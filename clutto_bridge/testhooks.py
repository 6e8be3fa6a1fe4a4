"""Deterministic crash points for the crash tests, and nothing else.

A hook is an environment variable ``CLUTTO_TEST_<NAME>`` set only by a test that runs the
bridge as its own process; when its value occurs in what the hook point is about, the
process ends at once (``os._exit``, as ``kill -9`` would: no cleanup, no flush of anything
but the log line). Unset, which it always is in production, a hook does nothing.

- ``CLUTTO_TEST_EXIT_AFTER_ACK=TEXT``: right after acknowledging a transaction holding a
  message whose body contains TEXT, before any of it is handled (``jobs/inbox.py``; the
  appservice runs what ``receive`` hands back once the acknowledgement is sent).
- ``CLUTTO_TEST_EXIT_AFTER_SPACE_CREATED=NAME``: right after the homeserver created the space
  of a team named NAME, before the bridge recorded it (``domain/service.py``).
- ``CLUTTO_TEST_EXIT_AFTER_SPACE=NAME``: right after a team named NAME got its space, before
  its rooms and the reply (``domain/service.py``).
- ``CLUTTO_TEST_EXIT_AFTER_ROOM_CREATED=NAME/ROOM``: right after the homeserver created a
  group room ROOM of team NAME, before the bridge recorded it (``domain/service.py``).
- ``CLUTTO_TEST_EXIT_AFTER_SPACE_INVITE=USER``: right after USER was invited to a team's
  space, before the invites to its rooms (``domain/service.py``).
- ``CLUTTO_TEST_EXIT_AFTER_REENCRYPT_BATCH=batch N``: right after the re-encryption job
  checkpointed its N-th batch in this process (``jobs/reencrypt.py``).

One hook hangs instead of ending: ``CLUTTO_TEST_BLOCK_LOOP=FIFO`` (a named pipe the test
made). On SIGUSR1 the running bridge's event loop blocks, as a hung bridge's would, until the
test writes a byte to FIFO (``cli.serve``; the watchdog test).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

log = logging.getLogger("clutto.testhooks")

EXIT_CODE = 137  # what a SIGKILL looks like to the shell


def armed(name: str, about: str) -> bool:
    value = os.environ.get(f"CLUTTO_TEST_{name}")
    return bool(value) and value is not None and value in about


def exit_if(name: str, about: str) -> None:
    """End the process now when the hook ``name`` is armed for ``about``."""
    if armed(name, about):
        exit_now(name)


def exit_now(name: str) -> None:
    log.warning("Test hook CLUTTO_TEST_%s: exiting now", name)
    sys.stderr.flush()
    os._exit(EXIT_CODE)


def block_loop_on_signal(loop: asyncio.AbstractEventLoop) -> None:
    """Armed by ``CLUTTO_TEST_BLOCK_LOOP``: SIGUSR1 blocks ``loop`` until the FIFO gets a byte."""
    fifo = os.environ.get("CLUTTO_TEST_BLOCK_LOOP")
    if not fifo:
        return

    def block() -> None:
        log.warning("Test hook CLUTTO_TEST_BLOCK_LOOP: blocking the event loop")
        # Opening blocks until the test opens the FIFO to write; reading, until it writes.
        fd = os.open(fifo, os.O_RDONLY)
        try:
            os.read(fd, 1)
        finally:
            os.close(fd)
        log.warning("Test hook CLUTTO_TEST_BLOCK_LOOP: event loop released")

    loop.add_signal_handler(signal.SIGUSR1, block)
