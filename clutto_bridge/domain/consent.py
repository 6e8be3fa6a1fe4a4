"""Consent records (P8): who accepted which policy version, and whom block mode holds back.

A user's consent is theirs, not a team's: accepting once covers all their teams.
"""

from __future__ import annotations

from dataclasses import dataclass

from clutto_bridge.clock import Clock
from clutto_bridge.config import Settings
from clutto_bridge.db.consent import ConsentStore
from clutto_bridge.db.member import Member
from clutto_bridge.domain.errors import Conflict, InvalidInput
from clutto_bridge.policy import consent as policy


@dataclass(kw_only=True, eq=False, repr=False)
class ConsentService:
    store: ConsentStore
    settings: Settings
    clock: Clock

    @property
    def texts(self) -> dict[str, policy.PolicyText]:
        return self.settings.consent.texts

    @property
    def current(self) -> policy.PolicyText:
        return self.settings.consent.current

    async def accepted(self, user_id: str) -> list[tuple[str, int]]:
        """(version, accepted_at ms) of every acceptance, oldest first."""
        return [(a.version, a.accepted_at) for a in await self.store.accepted(user_id)]

    def covers(self, accepted: list[tuple[str, int]]) -> bool:
        """Whether these acceptances (from ``accepted``) cover the current policy version."""
        return policy.has_consented(self.texts, self.settings.consent.version, [v for v, _ in accepted])

    async def has_consented(self, user_id: str) -> bool:
        return self.covers(await self.accepted(user_id))

    async def accept(self, user_id: str, version: str | None = None) -> policy.PolicyText:
        """Record consent to the current version. Naming another version is refused."""
        current = self.settings.consent.version
        if version is not None and version != current:
            if version not in self.texts:
                raise InvalidInput(f"There is no policy version {version!r}. The current version is {current}.")
            raise InvalidInput(f"Version {version} is not the current policy; accept the current version, {current}.")
        if current in [v for v, _ in await self.accepted(user_id)]:
            raise Conflict(f"You already accepted policy version {current}.")
        await self.store.accept(user_id, current, self.clock.now_ms())
        await self.record_choice(user_id, "policy_consent", current)
        return self.current

    async def record_choice(self, user_id: str, choice: str, value: str) -> None:
        await self.store.record_choice(user_id, choice, value, self.clock.now_ms())

    async def choices(self, user_id: str) -> list[dict]:
        return [{"choice": c.choice, "value": c.value, "ts": c.ts} for c in await self.store.choices(user_id)]

    async def was_told(self, user_id: str, version: str) -> bool:
        return await self.store.was_told(user_id, version)

    async def mark_told(self, user_id: str, version: str) -> None:
        await self.store.mark_told(user_id, version, self.clock.now_ms())

    async def blocked(self, members: list[Member]) -> frozenset[str]:
        """Active members block mode keeps from sending: those without consent to the current policy."""
        if self.settings.consent.mode != "block":
            return frozenset()
        return frozenset([m.user_id for m in members if m.current and not await self.has_consented(m.user_id)])
