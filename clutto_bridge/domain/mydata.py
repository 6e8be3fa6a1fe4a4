"""A member's own data: everything the bridge stores about them, readable and exportable.

The export is the same data as the summary, as JSON, so a member can check one against
the other. Team content (messages, files) belongs to the team and is exported by its
Customer; here only what is about the member personally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clutto_bridge import __version__
from clutto_bridge.clock import utc_minute
from clutto_bridge.db.account import AccountStore
from clutto_bridge.db.member import MemberStore
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.contacts import ContactService
from clutto_bridge.domain.notices import NoticeService
from clutto_bridge.domain.profiles import ProfileService
from clutto_bridge.policy.audit_actions import AuditAction


@dataclass(kw_only=True, eq=False, repr=False)
class MyData:
    members: MemberStore
    accounts: AccountStore
    profiles: ProfileService
    consent: ConsentService
    contacts: ContactService
    notices: NoticeService
    audit: AuditLog

    async def collect(self, user_id: str, *, reader: str | None) -> dict[str, Any]:
        """Everything about ``user_id``; read by anyone else (``reader`` None: the operator), it is
        recorded as a disclosure."""
        if reader != user_id:
            await self.audit.record(None, reader, AuditAction.MEMBER_DATA_READ, user_id, part="all")
        teams = [
            {"team_id": a.team_id, "team": a.team, "role": a.role, "membership": a.membership, "added_at": a.added_at}
            for a in await self.members.affiliations(user_id)
        ]
        account = await self.accounts.get(user_id)
        accepted = await self.consent.accepted(user_id)
        return {
            "user_id": user_id,
            "generated_by": f"clutto-bridge {__version__}",
            "profile": await self.profiles.get(user_id),
            "account": {"email": account.email, "created_at": account.created_at} if account else None,
            "teams": teams,
            "policy_consent": [{"version": v, "accepted_at": ts} for v, ts in accepted],
            "consent_current": self.consent.covers(accepted),
            "marketing_opted_in": await self.notices.marketing_opted_in(user_id),
            "contact_import_allowed": await self.contacts.permitted(user_id),
            "contacts": await self.contacts.list(user_id),
            "choices": await self.consent.choices(user_id),
        }

    async def exported(self, user_id: str, size: int) -> None:
        """The member's own data left the bridge as a file in their chat."""
        await self.audit.record(None, user_id, AuditAction.OWN_DATA_EXPORTED, user_id, bytes=size)

    async def consent_read(self, user_id: str, *, reader: str | None) -> None:
        if reader != user_id:
            await self.audit.record(None, reader, AuditAction.MEMBER_DATA_READ, user_id, part="consent")

    @staticmethod
    def summary(data: dict[str, Any]) -> str:
        profile = ", ".join(f"{k}: {v}" for k, v in data["profile"].items() if v) or "empty"
        teams = ", ".join(f"{t['team']} ({t['role']}, {t['membership']})" for t in data["teams"]) or "none"
        consents = ", ".join(c["version"] for c in data["policy_consent"]) or "none yet"
        lines = [
            f"**What Clutto stores about {data['user_id']}**",
            f"Profile: {profile}",
            f"Teams and roles: {teams}",
            f"Policy versions you accepted: {consents}",
            f"Product news: {'yes' if data['marketing_opted_in'] else 'no'}",
            f"Contact import allowed: {'yes' if data['contact_import_allowed'] else 'no'}; "
            f"imported contacts: {len(data['contacts'])}",
        ]
        if data["choices"]:
            shown = data["choices"][-5:]
            earlier = len(data["choices"]) - len(shown)
            lines.append(
                "Your choices, newest last: "
                + ", ".join(_choice(c) for c in shown)
                + (f" (and {earlier} earlier)" if earlier else "")
            )
        if data["account"]:
            lines.append(f"Account created by Clutto, email: {data['account']['email']}")
        lines.append("Send `mydata export` for all of it as a JSON file.")
        return "\n".join(lines)


_CHOICES = {
    "policy_consent": "accepted policy",
    "contact_import": "contact import",
    "marketing": "product news",
    "cookies": "portal cookies",
}


def _choice(choice: dict[str, Any]) -> str:
    when = utc_minute(choice["ts"])
    value = str(choice["value"]).replace("_", " ")
    return f"{_CHOICES.get(choice['choice'], choice['choice'])} {value} on {when}"
