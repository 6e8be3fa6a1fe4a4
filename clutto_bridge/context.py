"""The domain services that entry points (bot commands, the provisioning API, the event
dispatcher) call: passed to them explicitly, never global."""

from __future__ import annotations

from dataclasses import dataclass

from clutto_bridge.config import Settings
from clutto_bridge.domain.added_rooms import AddedRooms
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.contacts import ContactService
from clutto_bridge.domain.details import TeamDetails
from clutto_bridge.domain.email import EmailService
from clutto_bridge.domain.encryption import RoomEncryption
from clutto_bridge.domain.integrations import IntegrationService
from clutto_bridge.domain.lifecycle import TrialLifecycle
from clutto_bridge.domain.members import MemberService
from clutto_bridge.domain.mydata import MyData
from clutto_bridge.domain.notices import NoticeService
from clutto_bridge.domain.onboarding import Onboarding
from clutto_bridge.domain.portal import PortalAccess
from clutto_bridge.domain.profiles import ProfileService
from clutto_bridge.domain.retention import RetentionService
from clutto_bridge.domain.rooms import RoomService
from clutto_bridge.domain.scim import ScimService
from clutto_bridge.domain.service import TeamService
from clutto_bridge.domain.usage import UsageService
from clutto_bridge.matrix.homeserver import Homeserver


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
