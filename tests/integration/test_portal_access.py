"""Sign-in links and portal sessions on both databases: a link works once and only for
``portal.link_lifetime``, too many are refused, and neither the token nor the session id is
stored (only their SHA-256 hashes)."""

from __future__ import annotations

import pytest

from clutto_bridge.clock import ManualClock
from clutto_bridge.config import validate
from clutto_bridge.crypto import FieldCipher, KeysetFile
from clutto_bridge.db import Stores, create_database
from clutto_bridge.db.upgrade import cipher_of
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.errors import NotAllowed
from clutto_bridge.domain.portal import PortalAccess
from clutto_bridge.policy.cookies import NECESSARY_ONLY, OPTIONAL_CATEGORIES, CookieChoice
from tests.unit.helpers import example

USER = "@ann:example.org"


@pytest.fixture
async def portal(database_url: str, tmp_path):
    keys = KeysetFile(tmp_path / "keyset.json")
    keys.create(0)
    cipher = FieldCipher.from_file(keys.path)
    db = create_database(database_url, cipher=cipher)
    await db.start()
    data = example()
    data["portal"]["public_url"] = "https://chat.example.org/portal"
    settings = validate(data)
    clock = ManualClock()
    stores = Stores.over(db, cipher)
    yield (
        PortalAccess(
            store=stores.portal,
            consent=ConsentService(store=stores.consent, settings=settings, clock=clock),
            settings=settings,
            clock=clock,
        ),
        db,
        clock,
    )
    await db.stop()


@pytest.mark.promise("P5")
async def test_a_link_signs_in_once_before_it_expires_and_only_hashes_are_stored(portal) -> None:
    access, db, clock = portal
    link = await access.issue_link(USER)
    prefix = "https://chat.example.org/portal/signin?token="
    assert link.startswith(prefix)
    token = link.removeprefix(prefix)
    assert await access.redeem(token) == USER
    with pytest.raises(NotAllowed, match="used already or has expired"):
        await access.redeem(token)

    late = (await access.issue_link(USER)).removeprefix(prefix)
    clock.advance(access.settings.portal.link_lifetime * 1000 + 1)
    with pytest.raises(NotAllowed, match="used already or has expired"):
        await access.redeem(late)

    await access.keep_session("session-secret", USER, '{"user": "x"}', 60)
    assert await access.session("session-secret") == '{"user": "x"}'
    stored = [dict(r) for r in await db.fetch("SELECT * FROM portal_link")] + [
        dict(r) for r in await db.fetch("SELECT * FROM portal_session")
    ]
    assert stored and not any(secret in str(stored) for secret in (token, late, "session-secret"))
    clock.advance(61 * 1000)
    assert await access.session("session-secret") is None
    await access.keep_session("other", None, "{}", 60)
    await access.end_session("other")
    assert await access.session("other") is None


async def test_erasing_a_person_ends_their_portal_sessions_and_links(portal) -> None:
    access, db, clock = portal
    await access.keep_session("signed-in", USER, "{}", 600)
    await access.keep_session("someone-else", "@bob:example.org", "{}", 600)
    link = await access.issue_link(USER)
    await Stores.over(db, cipher_of(db)).persons.forget(USER)
    assert await access.session("signed-in") is None
    assert await access.session("someone-else") == "{}"
    with pytest.raises(NotAllowed):
        await access.redeem(link.split("token=")[1])


async def test_links_per_hour_are_limited(portal) -> None:
    access, db, clock = portal
    for _ in range(access.settings.portal.links_per_hour):
        await access.issue_link(USER)
    with pytest.raises(NotAllowed, match="in the last hour"):
        await access.issue_link(USER)
    await access.issue_link("@bob:example.org")  # per user
    clock.advance(3600 * 1000 + 1)
    await access.issue_link(USER)


async def test_cookie_choices_are_recorded_with_time_and_policy_version(portal) -> None:
    access, db, clock = portal
    assert await access.cookie_choice(USER) is None
    # Asked for every category: only those the registry holds a cookie in (no analytics cookie) are recorded.
    recorded = await access.choose_cookies(USER, CookieChoice(frozenset(OPTIONAL_CATEGORIES)))
    assert recorded == CookieChoice(frozenset({"preferences"})) == await access.cookie_choice(USER)
    clock.advance(1000)
    await access.choose_cookies(USER, NECESSARY_ONLY)
    assert await access.cookie_choice(USER) == NECESSARY_ONLY
    history = await access.cookie_history(USER)
    version = access.settings.consent.version
    assert [(h.categories, h.policy_version) for h in history] == [("preferences", version), ("", version)]
    assert history[1].ts - history[0].ts == 1000
    choices = await access.consent.choices(USER)  # what mydata shows
    assert [(c["choice"], c["value"]) for c in choices] == [("cookies", "preferences"), ("cookies", "necessary_only")]
