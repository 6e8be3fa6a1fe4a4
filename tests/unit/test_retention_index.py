"""Pure decisions of retention at scale: redaction modes, the timeline index, purge points, the redaction pace."""

from __future__ import annotations

import pytest

from clutto_bridge.policy.redaction_pace import RedactionPace
from clutto_bridge.policy.retention import (
    RedactMode,
    RedactModeNotAllowed,
    effective_redact_mode,
    room_path,
    team_redact_mode,
)
from clutto_bridge.policy.timeline import CheckWalk, HeadFacts, HeadScan, Row, index_entry, joined_server

CUTOFF = 1_000_000


@pytest.mark.parametrize(
    ("operator", "choice", "allowed"),
    [
        ("auto", "always", True),
        ("auto", "AUTO", True),
        ("auto", "never", False),
        ("never", "never", True),
        ("never", "auto", True),
        ("never", "always", True),
        ("always", "always", True),
        ("always", "auto", False),
        ("always", "never", False),
    ],
)
def test_a_team_may_redact_more_than_the_operator_never_less(operator, choice, allowed) -> None:
    if allowed:
        assert team_redact_mode(RedactMode(operator), choice) == RedactMode(choice.lower())
    else:
        with pytest.raises(RedactModeNotAllowed, match=f"at least `{operator}`"):
            team_redact_mode(RedactMode(operator), choice)


def test_an_unknown_mode_is_named_and_an_old_choice_below_a_stricter_operator_gives_way() -> None:
    with pytest.raises(RedactModeNotAllowed, match="'sometimes' is not a redaction mode"):
        team_redact_mode(RedactMode.AUTO, "sometimes")
    assert effective_redact_mode(RedactMode.ALWAYS, "never") == RedactMode.ALWAYS
    assert effective_redact_mode(RedactMode.AUTO, None) == RedactMode.AUTO
    assert effective_redact_mode(RedactMode.NEVER, "always") == RedactMode.ALWAYS


@pytest.mark.parametrize(
    ("mode", "others", "reachable", "unreachable", "says"),
    [
        ("auto", False, False, True, "purge, redacting only what a purge cannot reach"),
        ("auto", True, True, True, "redact and purge"),
        ("always", False, True, True, "redact and purge"),
        ("never", True, False, False, "purge only"),
    ],
)
def test_each_room_takes_the_path_its_mode_and_members_call_for(mode, others, reachable, unreachable, says) -> None:
    path = room_path(RedactMode(mode), others)
    assert (path.redact_reachable, path.redact_unreachable) == (reachable, unreachable)
    assert path.describe() == says


def test_index_rows_come_from_room_events_and_leave_out_redactions() -> None:
    message = {"event_id": "$a", "room_id": "!r", "origin_server_ts": 5, "type": "m.room.message", "content": {}}
    assert index_entry(message).state is False
    assert index_entry({**message, "state_key": "", "type": "m.room.topic"}).state is True
    assert index_entry({**message, "unsigned": {"redacted_because": {}}}).redacted is True
    assert index_entry({**message, "type": "m.room.redaction"}) is None
    assert index_entry({"type": "m.presence", "content": {}}) is None
    assert index_entry({**message, "origin_server_ts": "5"}) is None


def _message(n: int, room: str = "!r") -> dict:
    return {"event_id": f"${n}", "room_id": room, "origin_server_ts": n, "type": "m.room.message", "content": {}}


def test_a_check_after_a_restart_keeps_what_came_after_the_last_known_event_in_forward_order() -> None:
    walk = CheckWalk("!r")
    newest = [_message(9), _message(8)]
    assert walk.see(newest, known=set()) == newest and not walk.met
    join = {
        "event_id": "$7",
        "room_id": "!r",
        "origin_server_ts": 7,
        "type": "m.room.member",
        "state_key": "@a:remote.example",
        "content": {"membership": "join"},
    }
    older = [join, _message(6), _message(5), _message(4)]
    assert walk.see(older, known={"$5", "$4"}) == [join, _message(6)]
    assert walk.met, "the walk ends at the first event the index held at the restart"
    assert [e.event_id for e in walk.forward()] == ["$6", "$7", "$8", "$9"]
    assert walk.forward()[1].state and walk.servers == {"remote.example"}
    assert CheckWalk.ids([*older, {"type": "m.presence"}]) == ["$7", "$6", "$5", "$4"]


def test_a_check_that_reaches_the_beginning_keeps_everything_and_only_its_room() -> None:
    walk = CheckWalk("!r")
    walk.see([_message(3), _message(2, room="!elsewhere"), {**_message(1), "type": "m.room.redaction"}], set())
    assert not walk.met and [e.event_id for e in walk.forward()] == ["$3"]


def test_synapse_dummy_events_in_a_busy_room_do_not_end_the_purge_walk() -> None:
    """Synapse sends dummy events, stamped with the time they are made, to merge forward
    extremities; one among old messages must not stop the purge (seen at 20,000 messages)."""
    old = {"event_id": "$o", "room_id": "!r", "origin_server_ts": 10, "type": "m.room.message", "content": {}}
    dummy = {**old, "event_id": "$d", "origin_server_ts": CUTOFF + 5, "type": "org.matrix.dummy_event"}
    new = {**old, "event_id": "$n", "origin_server_ts": CUTOFF + 9}
    entries = [index_entry(e) for e in (old, dummy, {**old, "event_id": "$o2"}, new)]
    assert entries[1].state is True
    timeline = [Row(i + 1, e.event_id, e.ts, e.state, e.redacted) for i, e in enumerate(entries)]
    scan = HeadScan(CUTOFF, slice_ms=10**12)
    assert walk(scan, timeline) == [1, 3]
    assert scan.points == [(4, "$n")]


def test_joins_name_the_servers_of_the_users_who_joined() -> None:
    join = {"type": "m.room.member", "state_key": "@bob:other.example", "content": {"membership": "join"}}
    assert joined_server(join) == "other.example"
    assert joined_server({**join, "content": {"membership": "invite"}}) is None
    assert joined_server({**join, "type": "m.room.message"}) is None
    assert joined_server({**join, "state_key": "nonsense"}) is None


def rows(*spec: tuple[int, bool]) -> list[Row]:
    """(ts, state) per row, positions 1.."""
    return [Row(i, f"${i}", ts, state, False) for i, (ts, state) in enumerate(spec, 1)]


def walk(scan: HeadScan, timeline: list[Row]) -> list[int]:
    expired = [r.position for r in timeline if scan.see(r)]
    scan.finish()
    return expired


def test_one_purge_stops_at_the_first_event_inside_the_window() -> None:
    scan = HeadScan(CUTOFF, slice_ms=10**12)
    timeline = rows((1, True), (10, False), (20, False), (CUTOFF, False), (30, False), (CUTOFF + 1, False))
    assert walk(scan, timeline) == [2, 3]
    assert scan.points == [(4, "$4")] and scan.purge_position == 4  # the old event at 5 is out of reach


def test_with_every_message_expired_the_purge_stops_at_a_later_state_event() -> None:
    scan = HeadScan(CUTOFF, slice_ms=10**12)
    assert walk(scan, rows((10, False), (20, True), (30, False), (40, True), (50, True), (60, False))) == [1, 3, 6]
    assert scan.points == [(5, "$5")]  # the message at 6 follows every state event: a purge cannot reach it


def test_nothing_expired_means_no_purge_and_slices_bound_long_purges() -> None:
    scan = HeadScan(CUTOFF, slice_ms=10**12)
    assert walk(scan, rows((CUTOFF, False), (1, False))) == [] and scan.points == []
    sliced = HeadScan(CUTOFF, slice_ms=100)
    walk(sliced, rows((0, False), (50, False), (100, False), (150, False), (250, False), (CUTOFF, False)))
    assert [p for p, _ in sliced.points] == [3, 5, 6]


def test_a_head_scan_resumes_from_its_saved_state() -> None:
    timeline = rows((10, False), (20, True), (30, False), (CUTOFF, False))
    whole = HeadScan(CUTOFF, 15)
    expected = walk(whole, timeline)
    first = HeadScan(CUTOFF, 15)
    seen = [r.position for r in timeline[:2] if first.see(r)]
    resumed = HeadScan.load(CUTOFF, 15, first.state())
    seen += walk(resumed, timeline[2:])
    assert seen == expected and resumed.points == whole.points


def test_the_pace_rises_while_latency_holds_and_falls_when_it_grows_or_the_homeserver_refuses() -> None:
    pace = RedactionPace(limit=4, ceiling=32)
    for _ in range(300):
        pace.completed(0.05)
    assert pace.limit == 32  # latency flat: up to the ceiling
    for _ in range(64):
        pace.completed(0.2)  # four times the best: requests only queue
    assert pace.limit < 32
    before = pace.limit
    pace.refused()
    assert pace.limit == max(1, before // 2)
    for _ in range(10):
        pace.refused()
    assert pace.limit == 1


def test_a_saturated_homeserver_settles_the_pace_near_its_capacity() -> None:
    """Simulated homeserver: 100 redactions/s at most, 20 ms each when idle (Little's law)."""
    pace = RedactionPace(limit=1, ceiling=64)
    for _ in range(400):
        latency = max(0.02, pace.limit / 100)
        pace.completed(latency)
    assert 2 <= pace.limit <= 6  # 2 in flight saturate it; far more would only queue


def test_the_pace_climbs_to_where_more_in_flight_stops_paying() -> None:
    """Simulated Synapse persisting events in batches: 50/s plus 100/s more as up to 32 requests
    are in flight, nothing more beyond (latency = in flight / throughput, Little's law)."""
    pace = RedactionPace(limit=8, ceiling=64)
    seen = []
    for _ in range(3000):
        pace.completed(pace.limit / (50 + 100 * min(pace.limit, 32) / 32))
        seen.append(pace.limit)
    settled = max(set(seen[-300:]), key=seen[-300:].count)
    assert 27 <= settled <= 48 and min(seen[-300:]) >= 27  # at the knee, probing one step above now and then


def test_a_sweep_checkpointed_before_the_index_redoes_its_current_room() -> None:
    from clutto_bridge.jobs.retention_sweep import Phase, SweepProgress

    old = {
        "cutoff": 5,
        "rooms": ["!a", "!b"],
        "redaction_only": False,
        "room_index": 1,
        "redacted": 7,
        "room": {
            "phase": "scan",
            "token": "t1",
            "scanned": False,
            "pending": None,
            "pending_next": None,
            "plan": {"points": []},
            "cuts_done": 0,
        },
    }
    p = SweepProgress.load(old)
    assert (p.room_index, p.redacted, p.room.phase, p.room.cursor) == (1, 7, Phase.FILL, 0)
    saved = {**old, "room": {"phase": "tail", "cursor": 42, "redact_reachable": True}}
    resumed = SweepProgress.load(saved)
    assert (resumed.room.phase, resumed.room.cursor, resumed.room.redact_reachable) == (Phase.TAIL, 42, True)


def test_a_sweep_checkpointed_one_page_at_a_time_redoes_that_page() -> None:
    from clutto_bridge.jobs.retention_sweep import Phase, SweepProgress

    saved = {
        "cutoff": 5,
        "rooms": ["!a"],
        "redaction_only": False,
        "room": {"phase": "head", "cursor": 10, "pending": ["$x", "$y"], "pending_cursor": 25},
    }
    p = SweepProgress.load(saved)
    assert (p.room.phase, p.room.cursor, p.room.pages) == (Phase.HEAD, 10, [[25, ["$x", "$y"]]])
    assert SweepProgress.load({**saved, "room": {"phase": "head", "pending": None}}).room.pages == []


def test_the_phase_clock_pauses_the_outer_step_while_a_nested_one_runs(monkeypatch) -> None:
    from clutto_bridge.jobs import retention_sweep

    now = [0.0]
    monkeypatch.setattr(retention_sweep.time, "monotonic", lambda: now[0])
    totals: dict[str, float] = {}
    clock = retention_sweep.PhaseClock(totals)
    with clock("other"):
        now[0] += 1
        with clock("select"):
            now[0] += 2
        now[0] += 4
    assert totals == {"other": 5, "select": 2}


def test_purge_status_is_asked_for_after_a_tenth_of_the_time_so_far() -> None:
    from clutto_bridge.matrix.admin import status_poll_delay

    assert status_poll_delay(0) == 0.01
    assert status_poll_delay(3) == 0.15
    assert status_poll_delay(60) == 1.0


def test_the_databases_summary_settles_a_head_only_where_no_slice_can_start() -> None:
    facts = HeadFacts(first_inside=(4, "$4"), first_expired=2, oldest_expired_ts=CUTOFF - 100, last_state=None, rows=3)
    assert HeadScan(CUTOFF, slice_ms=100).can_close_with(facts)
    assert not HeadScan(CUTOFF, slice_ms=99).can_close_with(facts)  # a walk would cut a slice
    walked = HeadScan(CUTOFF, slice_ms=10**12)
    walked.see(Row(1, "$1", 10, False, False))
    assert not walked.can_close_with(facts)  # a walk resumed halfway goes on walking
    settled = HeadScan(CUTOFF, slice_ms=10**12)
    settled.close_with(facts)
    assert settled.points == [(4, "$4")] and settled.closed
    nothing = HeadScan(CUTOFF, slice_ms=10**12)
    nothing.close_with(
        HeadFacts(first_inside=(1, "$1"), first_expired=None, oldest_expired_ts=None, last_state=None, rows=0)
    )
    assert nothing.points == [] and nothing.closed


def test_an_encrypted_event_is_indexed_with_the_megolm_session_it_names() -> None:
    encrypted = {
        "event_id": "$e",
        "room_id": "!r",
        "origin_server_ts": 5,
        "type": "m.room.encrypted",
        "content": {"algorithm": "m.megolm.v1.aes-sha2", "session_id": "S1", "ciphertext": "..."},
    }
    assert index_entry(encrypted).session_id == "S1"
    assert index_entry({**encrypted, "content": {}}).session_id is None  # redacted: the content is gone
    assert index_entry({**encrypted, "type": "m.room.message"}).session_id is None
    assert index_entry({**encrypted, "content": {"session_id": 7}}).session_id is None
