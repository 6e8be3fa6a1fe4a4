"""The cookie registry (P5): what a choice allows, what withdrawal deletes, and the start-up check
of the registry against the cookies the portal sets."""

from __future__ import annotations

import copy

import pytest
from aiohttp import web

from clutto_bridge.cli import main
from clutto_bridge.config import ConfigError, validate
from clutto_bridge.policy.cookies import (
    NECESSARY_ONLY,
    OPTIONAL_CATEGORIES,
    Cookie,
    CookieChoice,
    accept_all,
    allowed,
    offered,
    to_delete,
    undeclared,
)
from clutto_bridge.web.portal.cookies import DECLARED, CookieJar
from tests.conftest import config_with_tokens
from tests.unit.helpers import example

REGISTRY = (
    Cookie("session", "signed in", 3600, "necessary"),
    Cookie("theme", "colour theme", 86400, "preferences"),
    Cookie("visits", "counting visits", 86400, "analytics"),
)
EVERYTHING = CookieChoice(frozenset(OPTIONAL_CATEGORIES))


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"session"}),
        (NECESSARY_ONLY, {"session"}),
        (CookieChoice(frozenset({"preferences"})), {"session", "theme"}),
        (CookieChoice(frozenset({"analytics"})), {"session", "visits"}),
        (EVERYTHING, {"session", "theme", "visits"}),
    ],
)
def test_only_necessary_cookies_before_a_choice_and_the_chosen_categories_after(choice, expected) -> None:
    assert allowed(REGISTRY, choice) == expected


@pytest.mark.parametrize(
    ("choice", "present", "deleted"),
    [
        (EVERYTHING, {"session", "theme", "visits"}, set()),
        (NECESSARY_ONLY, {"session", "theme", "visits"}, {"theme", "visits"}),
        (CookieChoice(frozenset({"preferences"})), {"session", "theme", "visits"}, {"visits"}),
        (EVERYTHING, {"session", "stray"}, {"stray"}),  # nothing outside the registry stays
        (None, {"theme"}, {"theme"}),
    ],
)
def test_withdrawing_deletes_what_the_choice_no_longer_allows(choice, present, deleted) -> None:
    assert to_delete(REGISTRY, choice, present) == deleted


def test_accept_all_offers_and_records_only_categories_that_hold_a_cookie() -> None:
    without_analytics = REGISTRY[:2]
    assert offered(REGISTRY) == ("preferences", "analytics")
    assert offered(without_analytics) == ("preferences",) and offered(REGISTRY[:1]) == ()
    assert accept_all(REGISTRY) == EVERYTHING
    assert accept_all(without_analytics) == CookieChoice(frozenset({"preferences"}))
    assert accept_all(without_analytics).stored() == "preferences"
    assert EVERYTHING.within(offered(without_analytics)) == CookieChoice(frozenset({"preferences"}))


def test_a_choice_is_stored_and_read_back_without_unknown_categories() -> None:
    for choice in (EVERYTHING, NECESSARY_ONLY, CookieChoice(frozenset({"analytics"}))):
        assert CookieChoice.parse(choice.stored()) == choice
    assert CookieChoice.parse("preferences,necessary,tracking") == CookieChoice(frozenset({"preferences"}))
    assert NECESSARY_ONLY.allows("necessary") and not NECESSARY_ONLY.allows("preferences")


def test_the_registry_must_list_every_cookie_the_code_sets_under_its_category() -> None:
    declared = {"session": "necessary", "theme": "preferences"}
    assert undeclared(REGISTRY, declared) == []
    assert undeclared(REGISTRY[:1], declared) == [
        "the portal sets the cookie theme (preferences), which is not in the registry"
    ]
    wrong = (Cookie("session", "x", 60, "preferences"), REGISTRY[1])
    assert undeclared(wrong, declared) == ["session is registered as preferences, but the portal uses it as necessary"]


def _with_cookies(cookies: list[dict]) -> dict:
    data = copy.deepcopy(example())
    data["policy"]["cookies"] = cookies
    return data


def test_the_example_registry_covers_the_portal_and_a_missing_cookie_stops_start_up() -> None:
    settings = validate(example())
    CookieJar(settings.policy.cookies, secure=False, path="/portal")  # the defaults are complete
    assert {c.name: c.category for c in settings.policy.cookies} == DECLARED
    session_only = [c for c in example()["policy"]["cookies"] if c["category"] == "necessary"]
    with pytest.raises(ConfigError) as e:
        CookieJar(validate(_with_cookies(session_only)).policy.cookies, secure=False, path="/portal")
    assert e.value.key == "policy.cookies" and "clutto_prefs" in e.value.message


@pytest.mark.parametrize(
    ("cookies", "message"),
    [
        ([{"name": "a", "purpose": "x", "lifetime": "1d", "category": "tracking"}], "must be one of necessary"),
        ([{"name": "a b", "purpose": "x", "lifetime": "1d", "category": "necessary"}], "a cookie name"),
        ([{"name": "a", "purpose": "x", "lifetime": 5, "category": "necessary"}], "unit"),
        ([{"name": "a", "purpose": "x", "category": "necessary"}], "map of name, purpose, lifetime and category"),
        ([{"name": "a", "purpose": "x", "lifetime": "1d", "category": "necessary"}] * 2, "lists a more than once"),
    ],
)
def test_bad_registry_entries_name_the_key(cookies, message) -> None:
    with pytest.raises(ConfigError) as e:
        validate(_with_cookies(cookies))
    assert e.value.key == "policy.cookies" and message in e.value.message


def test_the_jar_refuses_a_cookie_the_choice_does_not_allow() -> None:
    settings = validate(example())
    jar = CookieJar(settings.policy.cookies, secure=True, path="/portal")
    response = web.Response()
    with pytest.raises(RuntimeError):
        jar.set(response, "clutto_prefs", "theme-dark", NECESSARY_ONLY)
    jar.set(response, "clutto_prefs", "theme-dark", EVERYTHING)
    morsel = response.cookies["clutto_prefs"]
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax"
    assert morsel["max-age"] == str(180 * 86400)


def test_the_bridge_does_not_start_with_a_registry_that_misses_a_portal_cookie(tmp_path, capsys) -> None:
    config = tmp_path / "config.yaml"
    config_with_tokens(
        config,
        **{"- name: clutto_prefs": "- name: clutto_theme", "sqlite:clutto.db": f"sqlite:{tmp_path / 'clutto.db'}"},
    )
    assert main(["-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "policy.cookies: the portal sets the cookie clutto_prefs (preferences), which is not in the registry" in err
    assert "Traceback" not in err
