"""What the audit log records: every action, with what it means and the details it carries.

The one list of audit actions. ``AuditLog.record`` takes only these, the stored value of a row
is the member's value (the log's rows and their hashes are the same as when these were plain
strings), and ``docs/operations/audit-actions.md`` is generated from this enum
(``clutto-bridge docs generate``), so the documentation cannot miss one.

It lives in ``policy/``, the lowest layer of the domain, so the domain, the jobs, the metrics
and the entry points can all name an action.
"""

from __future__ import annotations

from enum import StrEnum
from typing import cast

CHANGE = "change"
"""Something done to a team, its members, rooms or settings (by a person or a job)."""
ENFORCEMENT = "enforcement"
"""The bridge put something back or removed it because a rule of the policy says so."""
DISCLOSURE = "disclosure"
"""Data left the bridge or was shown to someone other than the person it is about."""

KINDS = {
    CHANGE: "Changes and destructive actions",
    ENFORCEMENT: "Enforcement",
    DISCLOSURE: "Disclosures: data leaving the bridge or shown to someone other than the person it is about",
}


class AuditAction(StrEnum):
    """An audit log action. Each member carries its ``kind`` and a sentence saying ``when`` it is
    recorded, its target and its details."""

    kind: str
    when: str

    def __new__(cls, value: str, kind: str, when: str) -> AuditAction:
        member = str.__new__(cls, value)
        member._value_ = value
        member.kind = kind
        member.when = when
        return member

    @classmethod
    def named(cls, value: str) -> AuditAction:
        """The action stored as ``value``; ValueError for any other string (``cls(value)`` would
        do the same, but the three-argument ``__new__`` hides that lookup from type checkers)."""
        try:
            return cast(AuditAction, cls._value2member_map_[value])
        except KeyError:
            raise ValueError(f"{value!r} is not an audit action") from None

    # --- members --------------------------------------------------------------------------------
    MEMBER_INVITED = (
        "member_invited",
        CHANGE,
        "A member was added to the team (`invite`, `account create`, the API, the portal); target: the user; "
        "details: `role`, `created_account` (the bridge made the account), `completed` (a repeat finished "
        "an interrupted invite).",
    )
    MEMBER_REMOVED = (
        "member_removed",
        CHANGE,
        "A member was removed (`remove`); target: the user; details: `deactivated`, `reason`.",
    )
    ROLE_CHANGED = (
        "role_changed",
        CHANGE,
        "A member's role changed (`role`); target: the user; details: `old`, `new`.",
    )
    OWNERSHIP_TRANSFERRED = (
        "ownership_transferred",
        CHANGE,
        "The team has a new owner (`transfer`); target: the new owner; details: `previous_owner`.",
    )
    INVITE_DECLINED = (
        "invite_declined",
        CHANGE,
        "An invited person declined the space invite; actor and target: that person.",
    )
    # --- rooms ----------------------------------------------------------------------------------
    ROOM_CREATED = (
        "room_created",
        CHANGE,
        "A group room was made in the team's space (`room create`, the `email` room on the first mail, or "
        "an identity provider's group, `POST /Groups`); target: the room; details: `name`.",
    )
    ROOM_ARCHIVED = (
        "room_archived",
        CHANGE,
        "A group room was archived (`room archive`, or `DELETE /Groups/{id}` of an identity provider's "
        "group); target: the room; details: `name`.",
    )
    ROOM_ADDED = (
        "room_added",
        CHANGE,
        "A room an owner or admin added to the space became a team room; target: the room; details: `name`.",
    )
    ROOMS_ENCRYPTED = (
        "rooms_encrypted",
        CHANGE,
        "End-to-end encryption was turned on in team rooms that lacked it (`rooms encrypt`, or at start with "
        "`policy.encryption: require`); target: the space; details: `rooms`.",
    )
    DIRECT_CHAT_CREATED = (
        "direct_chat_created",
        CHANGE,
        "A direct chat between two members, linked to the team (`dm`); target: the room; details: `members`.",
    )
    # --- the team -------------------------------------------------------------------------------
    TEAM_RENAMED = (
        "team_renamed",
        CHANGE,
        "The team's name changed (`team rename`); details: `old`, `new`.",
    )
    TEAM_TOPIC_SET = (
        "team_topic_set",
        CHANGE,
        "The space's topic changed (`team topic`).",
    )
    TEAM_AVATAR_SET = (
        "team_avatar_set",
        CHANGE,
        "The space's avatar changed (`team avatar`); details: `url`.",
    )
    TEAM_DELETE_STARTED = (
        "team_delete_started",
        CHANGE,
        "The owner started deleting the team (`team delete`); details: `name`.",
    )
    TEAM_DELETED = (
        "team_deleted",
        CHANGE,
        "The team's space and rooms were deleted with purge and its rows removed; details: `name`, `rooms`.",
    )
    TEAM_PURGED = (
        "team_purged",
        CHANGE,
        "A team whose trial ended was purged; details: `name`, `rooms`, `media_deleted`, `accounts_erased`.",
    )
    PLAN_SET = (
        "plan_set",
        CHANGE,
        "The operator set the team's plan (`clutto-bridge plan`, `PUT /teams/{id}/plan`); details: `old`, `new`.",
    )
    TRIAL_WARNING = (
        "trial_warning",
        CHANGE,
        "The owner was warned that the trial ends; target: the owner; details: `before` (how long before the purge).",
    )
    # --- retention and holds --------------------------------------------------------------------
    RETENTION_SET = (
        "retention_set",
        CHANGE,
        "The team's message lifetime changed (`retention set`); details: `seconds`, `previous`.",
    )
    RETENTION_REDACT_SET = (
        "retention_redact_set",
        CHANGE,
        "The team chose when sweeps redact (`retention redact`); details: `mode`, `previous`.",
    )
    RETENTION_SWEEP = (
        "retention_sweep",
        CHANGE,
        "A retention sweep of the team finished; details: `cutoff`, `redacted`, `removed`, `rooms`, `held`, "
        "`media_deleted`, `sessions_deleted`, `redaction_only`.",
    )
    RETENTION_REDACTED = (
        "retention_redacted",
        CHANGE,
        "A sweep redacted expired events in a room; target: the room; details: `events`, `cutoff`.",
    )
    RETENTION_PURGED = (
        "retention_purged",
        CHANGE,
        "A sweep purged a room's expired history on the homeserver; target: the room; details: `cuts`.",
    )
    HOLD_PLACED = (
        "hold_placed",
        CHANGE,
        "A legal hold was placed (`hold on`); target: the room or the team; details: `reason`.",
    )
    HOLD_LIFTED = (
        "hold_lifted",
        CHANGE,
        "A legal hold was lifted (`hold off`); target: the room or the team.",
    )
    PURGE_BLOCKED_BY_HOLD = (
        "purge_blocked_by_hold",
        ENFORCEMENT,
        "The trial purge of a team was held back by a legal hold (recorded once per team).",
    )
    # --- exports --------------------------------------------------------------------------------
    EXPORT_SETTING = (
        "export_setting",
        CHANGE,
        "Whether a purge waits for an export changed (`export before-purge`); details: `before_purge`.",
    )
    EXPORT_REQUESTED = (
        "export_requested",
        DISCLOSURE,
        "A team export was started (`export`, `POST .../teams/{id}/exports`); details: `job`.",
    )
    EXPORT_CREATED = (
        "export_created",
        DISCLOSURE,
        "A team export was written (also the export before a trial purge); target: its folder; details: "
        "`events`, `media`, `undecryptable`.",
    )
    EXPORT_DOWNLOADED = (
        "export_downloaded",
        DISCLOSURE,
        "A file of a team export was downloaded through the API or the portal; target: the file's path.",
    )
    # --- integrations ---------------------------------------------------------------------------
    INTEGRATION_ALLOWED = (
        "integration_allowed",
        CHANGE,
        "A bot or widget URL prefix was allowed (`integrations allow`); target: it; details: `kind`.",
    )
    INTEGRATION_DENIED = (
        "integration_denied",
        CHANGE,
        "A bot or widget URL prefix was taken off the team's list (`integrations deny`); target: it; details: `kind`.",
    )
    INTEGRATION_REMOVED = (
        "integration_removed",
        ENFORCEMENT,
        "Someone who is neither a member nor an allowed bot was removed from a team room; target: the user; "
        "details: `room_id`.",
    )
    WIDGET_REMOVED = (
        "widget_removed",
        ENFORCEMENT,
        "A widget whose URL is not under an allowed prefix was removed; target: the room; details: `widget`, `url`.",
    )
    POWER_LEVELS_REVERTED = (
        "power_levels_reverted",
        ENFORCEMENT,
        "Power levels changed by hand were put back to the team's roles; target: the room; details: `changed`.",
    )
    PROFILE_RESET = (
        "profile_reset",
        ENFORCEMENT,
        "A member's display name or avatar was reset to their profile (`policy.profile.enforce: reset`); "
        "target: the user; details: `room_id`, `reason`.",
    )
    # --- email ----------------------------------------------------------------------------------
    EMAIL_ENABLED = (
        "email_enabled",
        CHANGE,
        "The team's email address was switched on (`email on`); target: the address.",
    )
    EMAIL_DISABLED = (
        "email_disabled",
        CHANGE,
        "The team's email address was switched off (`email off`); target: the address.",
    )
    EMAIL_POSTED = (
        "email_posted",
        DISCLOSURE,
        "The headers of a mail were posted to the team's `email` room; target: the room; details: `headers` "
        "(how many; no value is kept).",
    )
    # --- SCIM provisioning (the actor of what a provider does is `scim:<token id>`) ----------------
    SCIM_TOKEN_CREATED = (
        "scim_token_created",
        CHANGE,
        "A SCIM bearer token was made for the team's identity provider (`scim token new`, the API, the "
        "portal); target: the token id; details: `name`.",
    )
    SCIM_TOKEN_REVOKED = (
        "scim_token_revoked",
        CHANGE,
        "A SCIM token was revoked (`scim token revoke`, the API); target: the token id; details: `name`.",
    )
    SCIM_USER_PROVISIONED = (
        "scim_user_provisioned",
        CHANGE,
        "An identity provider provisioned a person into the team (`POST /Users`); target: the user; "
        "details: `scim_id`, `active`.",
    )
    SCIM_USER_UPDATED = (
        "scim_user_updated",
        CHANGE,
        "An identity provider changed a provisioned person (`PUT`/`PATCH /Users/{id}`: names, title, "
        "`active`); target: the user; details: `scim_id`, `changed` (the attribute names).",
    )
    SCIM_USER_DELETED = (
        "scim_user_deleted",
        CHANGE,
        "An identity provider deleted a provisioned person (`DELETE /Users/{id}`): removed from the team; "
        "target: the user; details: `scim_id`.",
    )
    SCIM_GROUP_LINKED = (
        "scim_group_linked",
        CHANGE,
        "An identity provider's group took over an existing room named in `scim.room_groups`: from then on "
        "its members are the group's, it is invite-only, and the provisioned users in it who are not in the group "
        "are removed; target: the room; details: `scim_id`, `name`, `removed` (their user IDs).",
    )
    SCIM_GROUP_MEMBERS_CHANGED = (
        "scim_group_members_changed",
        CHANGE,
        "An identity provider changed the members of a group that is a room (`PUT`/`PATCH /Groups/{id}`): "
        "invited or removed; target: the room; details: `scim_id`, `added`, `removed` (user IDs).",
    )
    # --- disclosures of personal data -----------------------------------------------------------
    MEMBER_DATA_READ = (
        "member_data_read",
        DISCLOSURE,
        "The operator read a member's data; target: the member; details: `part`: `all` "
        "(`GET /_clutto/v1/users/{user}/data`), `consent` (`.../consent`) or `profile` (`.../profile`).",
    )
    TEAM_CONSENT_READ = (
        "team_consent_read",
        DISCLOSURE,
        "The owner, an admin or the operator read who in a team accepted the policy "
        "(`GET .../teams/{id}/consent`); details: `members`.",
    )
    CONTACTS_MATCHED = (
        "contacts_matched",
        DISCLOSURE,
        "A contact import told the member which of their contacts have an account here; details: `matched` "
        "(the matched IDs).",
    )
    OWN_DATA_EXPORTED = (
        "own_data_exported",
        DISCLOSURE,
        "`mydata export`: a member's own data sent to them as a file; details: `bytes`.",
    )
