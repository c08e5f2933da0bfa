"""CPU per mail of building and flattening a notification, the plain way against
build_email's (kept header classes and parsed headers), interleaved in one process.

    .venv/bin/python -m bench.mail_build --mails 2000 --rounds 3

"Plain" is the mail built as before anything was kept (a fresh EmailMessage, every header
parsed from its text: test_mail_caches.plain_build); both are flattened as aiosmtplib
does for the relay. Template rendering is timed the same way: a Jinja environment that
looks each template up per mail (auto_reload on) against load_templates().
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from aiosmtplib.email import flatten_message
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.notifications.domain import notices as domain
from services.notifications.tests.unit.test_mail_caches import plain_build

MAIL_FROM = "HR Case Desk <hr-desk@hrcase.local>"
CONTEXT = {
    "reference": "HR-2026-000123",
    "priority": "high",
    "sensitivity": "normal",
    "category": "conduct",
    "first_response_due": "Mon 23 Nov 2026, 09:00 UTC",
    "case_url": "https://hr.example.org/portal/cases/1",
}


def notifications(count: int, recipients: int) -> list[domain.Notification]:
    subject, body = domain.load_templates().render("case_assigned", CONTEXT)
    made = []
    for i in range(count):
        nid = uuid.uuid4()
        made.append(
            domain.Notification(
                notification_id=nid,
                source_event_id=uuid.uuid4(),
                case_id=uuid.uuid4(),
                audience="owner",
                template="case_assigned",
                recipient_id=f"e-{i % recipients}",
                recipient_email=f"person{i % recipients}@example.com",
                subject=subject,
                body=body,
                message_id=f"<{nid}@hrcase.local>",
            )
        )
    return made


def per_mail_us(
    build: Callable[..., EmailMessage], mails: list[domain.Notification], date: datetime
) -> float:
    started = time.process_time()
    for n in mails:
        flatten_message(build(n, mail_from=MAIL_FROM, date=date))
    return (time.process_time() - started) / len(mails) * 1e6


def per_render_us(render: Callable[[str, dict[str, Any]], tuple[str, str]], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        render("case_assigned", CONTEXT)
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--recipients", type=int, default=50, help="distinct addresses")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    mails = notifications(args.mails, args.recipients)
    date = datetime.now(UTC)
    looked_up = Environment(
        loader=FileSystemLoader(domain.TEMPLATES_DIR),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )

    def render_looked_up(name: str, context: dict[str, Any]) -> tuple[str, str]:
        subject = looked_up.get_template(f"{name}.subject.j2").render(context).strip()
        return subject, looked_up.get_template(f"{name}.body.j2").render(context)

    kept = domain.load_templates()
    for round_ in range(1, args.rounds + 1):
        plain = per_mail_us(plain_build, mails, date)
        print(
            f"round {round_}: build+flatten per mail plain {plain:.0f}"
            f" µs, kept {per_mail_us(domain.build_email, mails, date):.0f} µs;"
            f" render per mail looked up {per_render_us(render_looked_up, args.mails):.0f} µs,"
            f" kept {per_render_us(kept.render, args.mails):.0f} µs"
        )


if __name__ == "__main__":
    main()
