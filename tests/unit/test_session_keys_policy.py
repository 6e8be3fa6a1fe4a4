"""Keys follow retention: which of the bot's Megolm sessions may go out on a key request."""

from __future__ import annotations

import pytest

from clutto_bridge.db.megolm_sessions import SessionSpan
from clutto_bridge.policy.session_keys import may_share

CUTOFF = 1_000


@pytest.mark.parametrize(
    ("span", "shared"),
    [
        (SessionSpan(1_000, 5_000), True),  # every message inside the window
        (SessionSpan(1_500, 1_500), True),
        (SessionSpan(999, 5_000), False),  # straddles the cutoff: the key would open the older messages too
        (SessionSpan(10, 999), False),  # every message expired
        (None, False),  # no message of it indexed: unknown, never shared
    ],
)
def test_a_key_goes_out_only_when_every_message_of_its_session_is_inside_the_window(span, shared) -> None:
    assert may_share(span, CUTOFF) is shared
