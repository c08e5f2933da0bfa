"""Announcing the routing policy a process loaded (once per distinct content) and the staff
roster it names (on every start)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.routing.adapters import sql
from services.routing.domain.policy import Policy, StaffMember
from shared.envelope import Actor
from shared.events import (
    RosterCalendar,
    RosterMember,
    RosterTeam,
    RoutingPolicyLoaded,
    RoutingRosterPublished,
    make_event,
)
from shared.uow import UnitOfWork

# (connection, policy_hash, version, source) -> True the first time this content is loaded.
RecordPolicyLoad = Callable[[Any, str, int, str], Awaitable[bool]]


async def announce_policy(
    uow: UnitOfWork,
    policy: Policy,
    source: str,
    *,
    record_load: RecordPolicyLoad = sql.record_policy_load,
) -> bool:
    """Record `routing.policy_loaded` once per distinct policy content; restarts stay
    quiet. Returns whether the event was emitted."""
    async with uow:
        if not await record_load(uow.conn, policy.source_hash, policy.version, source):
            return False
        await uow.emit(
            make_event(
                RoutingPolicyLoaded(
                    policy_hash=policy.source_hash, version=policy.version, source=source
                ),
                producer="routing",
                actor=Actor(type="service", id="routing"),
                case_id=None,
            )
        )
    return True


def _member(member: StaffMember) -> RosterMember:
    return RosterMember(id=member.id, name=member.name, email=member.email)


def roster_of(policy: Policy) -> RoutingRosterPublished:
    """The policy's teams (label, lead, calendar, members), calendars and other staff."""
    return RoutingRosterPublished(
        policy_hash=policy.source_hash,
        version=policy.version,
        teams=[
            RosterTeam(
                team=key,
                label=team.label,
                lead=team.lead,
                calendar=team.calendar,
                members=[_member(m) for m in team.members],
            )
            for key, team in policy.teams.items()
        ],
        calendars=[
            RosterCalendar(
                name=name,
                time_zone=spec.time_zone,
                hours={day: list(intervals) for day, intervals in spec.hours.items()},
                holidays=list(spec.holidays),
            )
            for name, spec in policy.calendars.items()
        ],
        staff=[_member(s) for s in policy.staff],
    )


async def publish_roster(uow: UnitOfWork, policy: Policy) -> None:
    """`routing.roster_published` on every start: a consumer that joined later (or lost its
    read model) gets the roster at the next start; consumers keep the latest."""
    async with uow:
        await uow.emit(
            make_event(
                roster_of(policy),
                producer="routing",
                actor=Actor(type="service", id="routing"),
                case_id=None,
            )
        )
