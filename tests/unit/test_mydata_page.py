"""The "My data" page's sections, from the same dict as the JSON download."""

from __future__ import annotations

from clutto_bridge.web.portal import mydata

DEC_6 = 1796565780000  # 2026-12-06 14:03 UTC


def test_the_page_shows_dates_and_words_not_epoch_milliseconds() -> None:
    data = {
        "user_id": "@ann:example.com",
        "generated_by": "clutto-bridge 1.0",
        "profile": {"first_name": "Ann", "last_name": None, "designation": None, "photo": None},
        "account": None,
        "teams": [{"team_id": "t1", "team": "Acme", "role": "member", "membership": "joined", "added_at": DEC_6}],
        "policy_consent": [{"version": "2026-11", "accepted_at": DEC_6}],
        "consent_current": True,
        "marketing_opted_in": False,
        "contact_import_allowed": True,
        "contacts": [
            {"name": "Bo", "emails": ["bo@example.com"], "matrix_ids": [], "matched": None, "imported_at": DEC_6}
        ],
        "choices": [
            {"choice": "cookies", "value": "preferences", "ts": DEC_6 - 60000},
            {"choice": "marketing", "value": "opted_out", "ts": DEC_6},
        ],
    }
    v = mydata.page(data)
    assert v["profile"][0] == ("First name", "Ann")
    assert v["teams"] == [{"name": "Acme", "role": "member", "membership": "joined", "since": "2026-12-06 14:03 UTC"}]
    assert v["accepted"] == [{"version": "2026-11", "on": "2026-12-06 14:03 UTC"}]
    assert v["contacts"][0]["imported"] == "2026-12-06 14:03 UTC"
    assert v["choices"] == [
        ("2026-12-06 14:03 UTC", "Product news", "no product news"),
        ("2026-12-06 14:02 UTC", "Portal cookies", "preferences cookies"),
    ]
    assert str(DEC_6) not in repr(v)
