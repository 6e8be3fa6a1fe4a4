"""Bringing members to the policy (P8) and to a complete profile (P2).

- A new member gets a welcome in their one chat with the bot, once per team: the first
  brings the policy summary and how to accept, later ones say what is new (the team, and how
  to name it when the user is in several).
- A new policy version is announced to every member of every team at start-up, each
  user once (recorded per user, so a restart halfway through neither skips nor repeats).
- In block mode a member without consent is held below the send level in every team room;
  ``accept`` records consent and restores their role's level.
- Members missing consent or a required profile field are reminded every
  ``policy.reminder_interval``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from clutto_bridge.clock import Clock
from clutto_bridge.config import Settings
from clutto_bridge.db.bot import TeamWelcomes
from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.profile import ProfileStore
from clutto_bridge.db.team import Team, TeamState
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.members import MemberService
from clutto_bridge.domain.notices import NoticeService
from clutto_bridge.domain.profiles import ProfileService
from clutto_bridge.domain.service import MANAGERS, TeamService
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.consent import PolicyText

log = logging.getLogger("clutto.onboarding")


@dataclass(kw_only=True, eq=False, repr=False)
class Onboarding:
    members: MemberService
    teams: TeamService
    member_store: MemberStore
    profile_store: ProfileStore
    consent: ConsentService
    profiles: ProfileService
    notices: NoticeService
    settings: Settings
    clock: Clock
    welcomes: TeamWelcomes
    audit: AuditLog
    _welcome_locks: dict[str, asyncio.Lock] = field(init=False, default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.settings.consent.mode == "block"

    def _how_to_accept(self, text: PolicyText) -> str:
        where = f" or at {text.url}" if text.url else ""
        lines = [f"Read the full text with `policy`{where}. Send `accept` to agree to version {text.version}."]
        if self.blocking:
            lines.append("Until you do, you can read your team's rooms but not send in them.")
        return " ".join(lines)

    async def _profile_hint(self, user_id: str) -> str:
        missing = await self.profiles.missing(user_id)
        if not missing:
            return ""
        return f"\nYour profile still needs: {', '.join(missing)}. Set it with `profile set {missing[0]} VALUE`."

    async def welcome(self, team: Team, user_id: str) -> None:
        """A member joined a team: one welcome per team, with the policy (once per version) and
        what their profile lacks. Joining two teams at once still gives one policy text."""
        try:
            await self.profiles.publish(user_id)
        except Exception:
            log.exception("Could not publish the profile of %s to %s", user_id, team.id)
        async with self._welcome_locks.setdefault(user_id, asyncio.Lock()):
            if await self.welcomes.welcomed(team.id, user_id):
                return
            text = self.consent.current
            tell_policy = not await self.consent.has_consented(user_id) and not await self.consent.was_told(
                user_id, text.version
            )
            if tell_policy:
                body = (
                    f"Welcome to **{team.name}**! Before you chat, please read our privacy policy "
                    f"(version {text.version}): {text.summary}\n{self._how_to_accept(text)}"
                )
            else:
                body = f"Welcome to **{team.name}**! This chat is where I answer you; send `help` to see what I can do."
            body += await self._several_teams_hint(user_id)
            body += await self._profile_hint(user_id)
            await self._reminded(user_id)  # first, so a reminder never races this welcome
            await self.notices.tell(user_id, body)
            await self.welcomes.record(team.id, user_id, self.clock.now_ms())
            if tell_policy:
                await self.consent.mark_told(user_id, text.version)

    async def greeting(self, user_id: str) -> str:
        """The first words in a chat the user opens with the bot: what they can do now, by the
        teams they are in and their role in each."""
        roles = []
        for team in await self.teams.of_user(user_id):
            role = await self.teams.role_of(team, user_id) if team.state == TeamState.ACTIVE else None
            if role:
                roles.append((team.name, role))
        local = user_id.endswith(f":{self.settings.homeserver.domain}")
        return greeting(roles, may_create=local)

    async def _several_teams_hint(self, user_id: str) -> str:
        names = [t.name for t in await self.teams.of_user(user_id) if await self.teams.role_of(t, user_id)]
        if len(names) < 2:
            return ""
        return (
            f"\nYou are in {len(names)} teams ({', '.join(names)}). Here, team commands are about the "
            f"team you choose with `team use NAME`."
        )

    async def announce(self) -> int:
        """Tell every member of every active team about the current version, once each."""
        text = self.consent.current
        told = 0
        for user_id in await self.member_store.joined_in_active_teams():
            if await self.consent.was_told(user_id, text.version):
                continue
            needs = not await self.consent.has_consented(user_id)
            body = (
                f"Service notice: the privacy policy is now version {text.version} "
                f"(published {text.published.isoformat()}). {text.summary}"
            )
            body += "\n" + self._how_to_accept(text) if needs else "\nNo action is needed from you."
            try:
                await self.notices.tell(user_id, body)
            except MatrixRequestError as e:
                # One unreachable user must not hold up everyone after them; they are
                # not marked as told, so the next pass tries again.
                log.warning("Could not tell %s about policy version %s: %s", user_id, text.version, e)
                continue
            await self.consent.mark_told(user_id, text.version)
            told += 1
        if told:
            log.info("Told %d member(s) about policy version %s", told, text.version)
        if self.blocking and told:
            # After a new version, hold back everyone whose consent no longer covers it (each
            # start checks every team too: MemberService.sync_all_power_levels).
            for team in await self.teams.active():
                await self.members.sync_power_levels(team)
        return told

    async def accept(self, user_id: str, version: str | None = None) -> PolicyText:
        text = await self.consent.accept(user_id, version)
        log.info("%s accepted policy version %s", user_id, text.version)
        if self.blocking:
            for team in await self.teams.of_user(user_id):
                if team.state == TeamState.ACTIVE and await self.teams.role_of(team, user_id):
                    await self.members.sync_power_levels(team)
        return text

    async def team_status(self, team: Team, *, actor: str | None) -> list[dict]:
        """Who in a team has accepted the current policy (for its owner, admins and the operator)."""
        await self.teams.require_manager(team, actor)
        rows = []
        for member in await self.members.active(team):
            accepted = await self.consent.accepted(member.user_id)
            consented = self.consent.covers(accepted)
            rows.append(
                {
                    "user_id": member.user_id,
                    "consented": consented,
                    "last_accepted": accepted[-1][0] if accepted else None,
                    "blocked": self.blocking and not consented,  # as ConsentService.blocked decides
                }
            )
        # Every member's consent shown to the team's managers or the operator: a disclosure.
        await self.audit.record(team, actor, AuditAction.TEAM_CONSENT_READ, team.id, members=len(rows))
        return rows

    async def remind_due(self) -> int:
        """Remind members who still lack consent or a required profile field."""
        now = self.clock.now_ms()
        interval = self.settings.reminder_interval * 1000
        reminded = 0
        for user_id in await self.member_store.joined_in_active_teams():
            last = await self.profile_store.reminded_at(user_id)
            if last is not None and now - last < interval:
                continue
            parts = []
            if not await self.consent.has_consented(user_id):
                parts.append(
                    f"Reminder: please accept the privacy policy (version {self.consent.current.version}). "
                    + self._how_to_accept(self.consent.current)
                )
            hint = await self._profile_hint(user_id)
            if not parts and not hint:
                continue
            await self._reminded(user_id)
            try:
                await self.notices.tell(user_id, "\n".join(parts) + hint if parts else "Reminder:" + hint)
            except MatrixRequestError as e:
                log.warning("Could not remind %s: %s", user_id, e)
                continue
            reminded += 1
        return reminded

    async def _reminded(self, user_id: str) -> None:
        await self.profile_store.set_reminded(user_id, self.clock.now_ms())


_AS_ROLE = {
    "owner": "own {}",
    "admin": "are an admin of {}",
    "member": "are a member of {}",
    "guest": "are a guest in {}",
}


def greeting(roles: list[tuple[str, str]], *, may_create: bool) -> str:
    """The greeting of someone in the teams ``roles`` names ((team name, role) pairs, in no team
    when empty); ``may_create``: their account may own a team (one of this homeserver)."""
    lines = ["Hello! I am the Clutto bot."]
    if not roles:
        if may_create:
            lines.append(
                "You are in no team yet: create one here with `team create NAME`, or ask a team's owner "
                "or admin to invite you."
            )
        else:
            lines.append("You are in no team yet: a team's owner or admin can invite you.")
    else:
        by_role: dict[str, list[str]] = {}
        for name, role in roles:
            by_role.setdefault(role, []).append(f"**{name}**")
        lines.append(
            "You "
            + "; you ".join(_AS_ROLE.get(role, "are in {}").format(_and(names)) for role, names in by_role.items())
            + "."
        )
        managed = [name for name, role in roles if role in MANAGERS]
        if managed:
            lines.append(
                f"Here you can manage {'it' if len(managed) == 1 else 'them'}: invite people "
                "(`invite`), set how long messages are kept (`retention`), export the team's data "
                "(`export`) and more."
            )
        if len(managed) < len(roles):
            teams = "team" if len(roles) - len(managed) == 1 else "teams"
            lines.append(
                f"As a member you can see your {teams} (`team info`), your profile (`profile`) and what Clutto "
                "stores about you (`mydata`)."
            )
        if may_create:
            lines.append("You can also create a team of your own with `team create NAME`.")
    lines.append("Send `help` to see what I can do.")
    return " ".join(lines)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
