"""A conference as intake keeps it: pure updates of its row's jsonb (participants with
what was relayed to them, actions as routing tracks them). No I/O; shapes in
domain/conferences.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def participants_from(
    wanted: Sequence[Mapping[str, Any]],
    before: Sequence[Mapping[str, Any]],
    awaiting_consent: Iterable[str] = (),
    *,
    decided: bool,
) -> list[dict[str, Any]]:
    """The participants as a decision (or a request, `decided` False) lists them, keeping
    what intake knows of those already on the conference (mails, acknowledgement,
    objection); `invitation` is "awaiting_consent" for the ids routing holds back."""
    known = {str(p["participant_id"]): p for p in before}
    waiting = {str(i) for i in awaiting_consent}
    result = []
    for person in wanted:
        pid = str(person["participant_id"])
        old = known.get(pid, {})
        invitation = old.get("invitation")
        if decided:
            invitation = "awaiting_consent" if pid in waiting else "invited"
        result.append(
            {
                **{k: v for k, v in person.items()},
                "participant_id": pid,
                "invitation": invitation,
                "mails": list(old.get("mails") or []),
                "acknowledged_at": old.get("acknowledged_at"),
                "objection": old.get("objection"),
                "objection_at": old.get("objection_at"),
            }
        )
    return result


def with_mail(
    participants: Sequence[Mapping[str, Any]], participant_id: str, mail: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """The participants with `mail` relayed to one of them (once per notification_id);
    None when no such participant is on the conference."""
    result = [dict(p) for p in participants]
    for person in result:
        if person["participant_id"] == participant_id:
            mails = list(person.get("mails") or [])
            if all(m.get("notification_id") != mail["notification_id"] for m in mails):
                mails.append(dict(mail))
            person["mails"] = mails
            return result
    return None


def with_participant(
    participants: Sequence[Mapping[str, Any]], participant_id: str, **fields: Any
) -> list[dict[str, Any]] | None:
    """The participants with `fields` set on one (None when not on the conference)."""
    result = [dict(p) for p in participants]
    for person in result:
        if person["participant_id"] == participant_id:
            person.update(fields)
            return result
    return None


def with_action(
    actions: Sequence[Mapping[str, Any]], action_id: str, **fields: Any
) -> list[dict[str, Any]] | None:
    """The actions with `fields` set on one (None when the conference has no such action)."""
    result = [dict(a) for a in actions]
    for action in result:
        if action["action_id"] == action_id:
            action.update(fields)
            return result
    return None


def tracked_actions(actions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Routing's accepted actions as intake shows them: each open until routing says more."""
    return [
        {
            **dict(a),
            "status": "open",
            "due_soon": False,
            "overdue": False,
            "escalated_to_name": None,
            "note": None,
            "reason": None,
            "on_time": None,
        }
        for a in actions
    ]
