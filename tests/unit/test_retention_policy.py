import pytest

from clutto_bridge.policy.retention import (
    PurgePlan,
    RetentionBounds,
    RetentionOutOfBounds,
    cutoff,
    encrypted_files,
    media_urls,
    removable,
)

DAY = 86400
BOUNDS = RetentionBounds(min=DAY, max=3650 * DAY, default=365 * DAY)


@pytest.mark.parametrize("seconds", [DAY, 30 * DAY, 3650 * DAY])
def test_bounds_accept(seconds: int) -> None:
    assert BOUNDS.check(seconds) == seconds


@pytest.mark.parametrize("seconds", [0, DAY - 1, 3651 * DAY])
def test_bounds_refuse(seconds: int) -> None:
    with pytest.raises(RetentionOutOfBounds, match="from 1d to 3650d"):
        BOUNDS.check(seconds)


def test_effective_lifetime() -> None:
    assert BOUNDS.effective(None) == 365 * DAY
    assert BOUNDS.effective(30 * DAY) == 30 * DAY
    assert BOUNDS.effective(10) == DAY  # chosen before the operator raised the minimum


def test_cutoff() -> None:
    assert cutoff(10 * DAY * 1000, 3 * DAY) == 7 * DAY * 1000


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"type": "m.room.message", "origin_server_ts": 99}, True),
        ({"type": "m.room.message", "origin_server_ts": 100}, False),
        ({"type": "m.reaction", "origin_server_ts": 5}, True),
        ({"type": "m.room.member", "state_key": "@a:b", "origin_server_ts": 5}, False),
        ({"type": "m.room.redaction", "origin_server_ts": 5}, False),
        ({"type": "m.room.message", "origin_server_ts": 5, "unsigned": {"redacted_because": {}}}, False),
    ],
)
def test_removable(event: dict, expected: bool) -> None:
    assert removable(event, cutoff_ms=100) is expected


def _msg(event_id: str, ts: int) -> dict:
    return {"event_id": event_id, "type": "m.room.message", "origin_server_ts": ts}


def test_purge_plan_cuts_in_slices_and_stops_at_the_window() -> None:
    plan = PurgePlan(cutoff_ms=100, slice_ms=30)
    events = [
        {"event_id": "$create", "type": "m.room.create", "state_key": "", "origin_server_ts": 500},
        _msg("$a", 0),
        _msg("$b", 20),
        _msg("$c", 35),
        _msg("$d", 70),
        _msg("$new", 150),  # first message inside the window: the last cut
        _msg("$late-old", 10),  # old by its timestamp but after the window: redacted, not purged
    ]
    for event in events:
        plan.see(event)
    assert plan.points == ["$c", "$d", "$new"]
    assert plan.closed


def test_purge_plan_without_old_events_cuts_nothing() -> None:
    plan = PurgePlan(cutoff_ms=100, slice_ms=30)
    for event in [_msg("$x", 150), _msg("$y", 10)]:
        plan.see(event)
    assert plan.points == [] and plan.closed


def test_purge_plan_resumes_from_its_state() -> None:
    whole = PurgePlan(cutoff_ms=100, slice_ms=30)
    first = PurgePlan(cutoff_ms=100, slice_ms=30)
    events = [_msg("$a", 0), _msg("$b", 40), _msg("$c", 80), _msg("$d", 120)]
    for event in events:
        whole.see(event)
    for event in events[:2]:
        first.see(event)
    resumed = PurgePlan(100, 30, **first.state())
    for event in events[2:]:
        resumed.see(event)
    assert resumed.points == whole.points == ["$b", "$c", "$d"]


def test_media_urls() -> None:
    content = {"url": "mxc://a/1", "info": {"thumbnail_url": "mxc://a/2"}, "file": {"url": "mxc://a/3"}}
    assert media_urls(content) == {"mxc://a/1", "mxc://a/2", "mxc://a/3"}
    assert media_urls({"body": "hi", "url": "https://example.com"}) == set()


def test_encrypted_files_are_the_attachment_and_its_thumbnail_with_their_keys() -> None:
    file = {"url": "mxc://a/1", "key": {"k": "x"}, "iv": "i", "hashes": {"sha256": "h"}, "v": "v2"}
    thumb = {**file, "url": "mxc://a/2"}
    assert encrypted_files({"file": file, "info": {"thumbnail_file": thumb}}) == [file, thumb]
    assert encrypted_files({"url": "mxc://a/3", "info": {"thumbnail_url": "mxc://a/4"}}) == []
    assert encrypted_files({"file": {"url": "https://example.com/x"}, "info": "not a dict"}) == []
