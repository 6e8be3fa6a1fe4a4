import pytest

from clutto_bridge.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("45s", 45), ("1w", 604800),
     ("1d12h", 129600), (" 2H ", 7200), ("0s", 0)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "90", 90, "d", "1.5d", "-1d", "1y", "12 h", "ninety days", None, True, [1]])
def test_parse_duration_refuses_what_it_cannot_read(text) -> None:
    with pytest.raises(DurationError) as error:
        parse_duration(text)
    assert "90d" in str(error.value)


@pytest.mark.parametrize("seconds", [1, 59, 60, 3600, 86400, 90 * 86400, 129600, 93784])
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
