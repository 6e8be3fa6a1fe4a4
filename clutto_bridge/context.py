"""The domain services that entry points (bot commands, the provisioning API, the event
dispatcher) call: passed to them explicitly, never global."""

from __future__ import annotations

from dataclasses import dataclass

from clutto_bridge.config import Settings
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.teams.added_rooms import AddedRooms
from clutto_bridge.teams.consent import ConsentService
from clutto_bridge.teams.contacts import ContactService
from clutto_bridge.teams.details import TeamDetails
from clutto_bridge.teams.email import EmailService
from clutto_bridge.teams.encryption import RoomEncryption
from clutto_bridge.teams.integrations import IntegrationService
from clutto_bridge.teams.lifecycle import TrialLifecycle
from clutto_bridge.teams.members import MemberService
from clutto_bridge.teams.mydata import MyData
from clutto_bridge.teams.notices import NoticeService
from clutto_bridge.teams.onboarding import Onboarding
from clutto_bridge.teams.portal import PortalAccess
from clutto_bridge.teams.profiles import ProfileService
from clutto_bridge.teams.retention import RetentionService
from clutto_bridge.teams.rooms import RoomService
from clutto_bridge.teams.scim import ScimService
from clutto_bridge.teams.service import TeamService
from clutto_bridge.teams.usage import UsageService


@dataclass
class Services:
    teams: TeamService
    members: MemberService
    rooms: RoomService
    integrations: IntegrationService
    details: TeamDetails
    retention: RetentionService
    lifecycle: TrialLifecycle
    notices: NoticeService
    consent: ConsentService
    profiles: ProfileService
    onboarding: Onboarding
    contacts: ContactService
    mydata: MyData
    usage: UsageService
    email: EmailService
    encryption: RoomEncryption
    added_rooms: AddedRooms
    homeserver: Homeserver
    settings: Settings
    scim: ScimService
    """SCIM provisioning: the teams' tokens, and users and groups from identity providers."""
    portal: PortalAccess | None = None
    """Sign-in links and portal sessions; None while ``portal.enabled`` is off."""
