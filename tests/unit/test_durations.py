import pytest

from clutto_bridge.durations import MONTH, DurationError, format_duration, minutes_hint, parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90d", 90 * 86400),
        ("12h", 43200),
        ("30m", 1800),
        ("45s", 45),
        ("1w", 604800),
        ("1d12h", 129600),
        (" 2H ", 7200),
        ("0s", 0),
        ("1mo", 30 * 86400),
        ("3MO", 90 * 86400),
        ("1mo15d", 45 * 86400),
        ("1mo30m", MONTH + 1800),
        ("2w1m", 1209660),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "90", 90, "d", "1.5d", "-1d", "1y", "12 h", "ninety days", None, True, [1], "1ms", "mo", "1month", "1m o"],
)
def test_parse_duration_refuses_what_it_cannot_read(text) -> None:
    with pytest.raises(DurationError) as error:
        parse_duration(text)
    assert "90d" in str(error.value)


@pytest.mark.parametrize("seconds", [1, 59, 60, 3600, 86400, 90 * 86400, 129600, 93784])
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_a_refusal_of_a_duration_names_months() -> None:
    with pytest.raises(DurationError) as error:
        parse_duration("1 month")
    assert "mo for months" in str(error.value) and "m for minutes" in str(error.value)


@pytest.mark.parametrize(
    "text, hint",
    [
        ("1m", "`m` means minutes; for months write `mo`, for example `1mo`."),
        ("6M", "`m` means minutes; for months write `mo`, for example `6mo`."),
        ("1d30m", "`m` means minutes; for months write `mo`, for example `30mo`."),
        ("1mo", ""),
        ("90d", ""),
        ("12h", ""),
        ("", ""),
        (90, ""),
    ],
)
def test_minutes_hint_only_for_values_in_minutes(text, hint: str) -> None:
    assert minutes_hint(text) == hint
