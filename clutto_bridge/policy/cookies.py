"""Cookies (P5): the registry the operator configures, and which cookies a visitor's choice allows.

Pure decisions: the registry and a choice in, the cookies that may be set (or must be
deleted) out. The portal declares the cookies its code sets; a declared cookie missing from
the registry is a configuration error, found at start-up, never at the first visit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = ("necessary", "preferences", "analytics")
OPTIONAL_CATEGORIES = CATEGORIES[1:]
COOKIE_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")


@dataclass(frozen=True)
class Cookie:
    """One entry of ``policy.cookies``: what the privacy page shows about a cookie."""

    name: str
    purpose: str
    lifetime: int  # seconds; 0 means it ends with the browser session
    category: str


@dataclass(frozen=True)
class CookieChoice:
    """The optional categories a visitor agreed to (``necessary`` needs no consent)."""

    categories: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> CookieChoice:
        """From the stored form (``preferences,analytics``; empty for necessary only)."""
        return cls(frozenset(c for c in text.split(",") if c in OPTIONAL_CATEGORIES))

    def stored(self) -> str:
        return ",".join(c for c in OPTIONAL_CATEGORIES if c in self.categories)

    def allows(self, category: str) -> bool:
        return category == "necessary" or category in self.categories

    def within(self, categories: tuple[str, ...]) -> CookieChoice:
        """Only the categories offered: a consent to one that holds no cookie means nothing."""
        return CookieChoice(self.categories & frozenset(categories))


NECESSARY_ONLY = CookieChoice(frozenset())


def offered(registry: tuple[Cookie, ...]) -> tuple[str, ...]:
    """The optional categories a visitor is asked about: those that hold a cookie in the registry."""
    present = {c.category for c in registry}
    return tuple(c for c in OPTIONAL_CATEGORIES if c in present)


def accept_all(registry: tuple[Cookie, ...]) -> CookieChoice:
    """ "Accept all": every category the registry holds a cookie in, and nothing more."""
    return CookieChoice(frozenset(offered(registry)))


def allowed(registry: tuple[Cookie, ...], choice: CookieChoice | None) -> frozenset[str]:
    """Names of the cookies that may be set: only ``necessary`` ones before any choice."""
    return frozenset(c.name for c in registry if (choice or NECESSARY_ONLY).allows(c.category))


def to_delete(registry: tuple[Cookie, ...], choice: CookieChoice | None, present: set[str]) -> frozenset[str]:
    """The cookies a browser holds that the choice does not (or no longer) allow.

    A name outside the registry is deleted too: nothing unregistered stays in the jar.
    """
    return frozenset(name for name in present if name not in allowed(registry, choice))


def undeclared(registry: tuple[Cookie, ...], declared: dict[str, str]) -> list[str]:
    """Problems of the registry against the cookies the code sets (name -> category): a
    cookie missing from it, or registered under another category."""
    by_name = {c.name: c for c in registry}
    problems = []
    for name, category in declared.items():
        entry = by_name.get(name)
        if entry is None:
            problems.append(f"the portal sets the cookie {name} ({category}), which is not in the registry")
        elif entry.category != category:
            problems.append(f"{name} is registered as {entry.category}, but the portal uses it as {category}")
    return problems
