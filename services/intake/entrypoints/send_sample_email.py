"""Send a sample email to the intake SMTP listener (development and demos).

    python -m services.intake.entrypoints.send_sample_email --to hr@example.com --port 2525
    python -m services.intake.entrypoints.send_sample_email --subject "Re: [HR-2026-000001] more" \\
        --from sam.rivera@example.com --body "One more detail." --attach notes.pdf
"""

from __future__ import annotations

import argparse
import mimetypes
import smtplib
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path


def build_sample(
    *,
    sender: str,
    to: str,
    subject: str,
    body: str,
    attachments: list[Path] | None = None,
    in_reply_to: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    for path in attachments or []:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
        )
    return message


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Send a sample email to HR intake.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--to", default="hr@example.com")
    parser.add_argument("--from", dest="sender", default="sam.rivera@example.com")
    parser.add_argument("--subject", default="Question about my overtime pay")
    parser.add_argument(
        "--body",
        default="Hello HR,\n\nMy overtime for last month is missing from my payslip.\n\nSam",
    )
    parser.add_argument("--in-reply-to", default=None, help="a Message-ID to reply to")
    parser.add_argument("--attach", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    message = build_sample(
        sender=args.sender,
        to=args.to,
        subject=args.subject,
        body=args.body,
        attachments=args.attach,
        in_reply_to=args.in_reply_to,
    )
    with smtplib.SMTP(args.host, args.port, timeout=30) as smtp:
        # Step by step rather than send_message, to show the reply to DATA: it names the case.
        smtp.ehlo()
        smtp.mail(args.sender)
        code, reply = smtp.rcpt(args.to)
        if code >= 400:
            raise SystemExit(f"refused: {code} {reply.decode()}")
        code, reply = smtp.data(message.as_bytes(policy=policy.SMTP))  # CRLF on the wire
    print(f"{message['Message-ID']} -> {code} {reply.decode()}")
    if code >= 400:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
