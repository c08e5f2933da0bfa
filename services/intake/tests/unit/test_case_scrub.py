"""What a scrub keeps of a JSON document of a case: the skeleton's ids, instants, states
and kinds; every other string (names, addresses, employee ids, free text) is erased."""

from __future__ import annotations

from shared.privacy.fields import ERASED
from shared.privacy.scrub import scrub_json


def test_json_keeps_the_skeleton_and_erases_every_other_string():
    participants = [
        {
            "participant_id": "p-1",
            "role": "worker",
            "name": "Peter Novak",
            "email": "peter.novak@example.com",
            "employee_id": "E-1004",
            "status": "invited",
            "invited_at": "2026-11-02T10:00:00Z",
            "attended": True,
            "notes": ["felt dizzy", {"text": "back pain since the fall"}],
        }
    ]
    assert scrub_json(participants) == [
        {
            "participant_id": "p-1",
            "role": "worker",
            "name": ERASED,
            "email": ERASED,
            "employee_id": ERASED,
            "status": "invited",
            "invited_at": "2026-11-02T10:00:00Z",
            "attended": True,
            "notes": [ERASED, {"text": ERASED}],
        }
    ]
    assert scrub_json({"duration_minutes": 60, "summary": None}) == {
        "duration_minutes": 60,
        "summary": None,
    }
