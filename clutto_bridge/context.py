"""The bridge's services, passed to bot commands and API handlers alike (never global)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mautrix.appservice import IntentAPI

from clutto_bridge.config import Settings
from clutto_bridge.db.bot import ManagementRooms
from clutto_bridge.teams.consent import ConsentService
from clutto_bridge.teams.contacts import ContactService
from clutto_bridge.teams.integrations import IntegrationService
from clutto_bridge.teams.members import MemberService
from clutto_bridge.teams.mydata import MyData
from clutto_bridge.teams.notices import NoticeService
from clutto_bridge.teams.onboarding import Onboarding
from clutto_bridge.teams.profiles import ProfileService
from clutto_bridge.jobs.export import TeamExport
from clutto_bridge.teams.lifecycle import TrialLifecycle
from clutto_bridge.teams.retention import RetentionService
from clutto_bridge.teams.rooms import RoomService
from clutto_bridge.teams.service import TeamService
from clutto_bridge.teams.settings import TeamSettings


@dataclass
class Services:
    teams: TeamService
    members: MemberService
    rooms: RoomService
    integrations: IntegrationService
    team_settings: TeamSettings
    retention: RetentionService
    lifecycle: TrialLifecycle
    export: TeamExport
    notices: NoticeService
    consent: ConsentService
    profiles: ProfileService
    onboarding: Onboarding
    contacts: ContactService
    mydata: MyData
    management_rooms: ManagementRooms
    settings: Settings
    bot: Callable[[], IntentAPI]
