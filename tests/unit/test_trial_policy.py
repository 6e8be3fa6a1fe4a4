from clutto_bridge.policy.trial import due_warnings, purge_due

DAY = 86_400_000
WARNINGS = (7 * 86400, 86400)
PURGE = 100 * DAY


def test_no_warning_before_the_first_point() -> None:
    assert due_warnings(PURGE - 8 * DAY, "trial", PURGE, WARNINGS, set()) == []


def test_each_warning_once() -> None:
    assert due_warnings(PURGE - 7 * DAY, "trial", PURGE, WARNINGS, set()) == ["7d"]
    assert due_warnings(PURGE - 3 * DAY, "trial", PURGE, WARNINGS, {"7d"}) == []
    assert due_warnings(PURGE - DAY, "trial", PURGE, WARNINGS, {"7d"}) == ["1d"]


def test_late_start_sends_all_due_at_once() -> None:
    assert due_warnings(PURGE - 1, "trial", PURGE, WARNINGS, set()) == ["7d", "1d"]


def test_paid_teams_are_never_warned_or_purged() -> None:
    assert due_warnings(PURGE - DAY, "paid", PURGE, WARNINGS, set()) == []
    assert not purge_due(PURGE + DAY, "paid", PURGE)


def test_purge_due_at_the_end_of_grace() -> None:
    assert not purge_due(PURGE - 1, "trial", PURGE)
    assert purge_due(PURGE, "trial", PURGE)
