"""The notifications service: every way out (email today), delivery records and outcomes."""

from __future__ import annotations

from collections.abc import Mapping

from services.notifications.adapters.smtp import SmtpMailer
from services.notifications.domain import MailConfig, load_templates
from services.notifications.handlers import Notifier
from shared.consumer import Handler
from shared.service import Runtime, ServiceSpec


async def build_handlers(runtime: Runtime) -> Mapping[str, Handler]:
    settings = runtime.settings
    mailer = SmtpMailer(settings.smtp_host, settings.smtp_port)
    runtime.closers.append(mailer.close)
    notifier = Notifier(
        templates=load_templates(),
        config=MailConfig(portal_base_url=settings.portal_base_url, mail_from=settings.mail_from),
        mailer=mailer,
        acknowledgements_per_hour=settings.acknowledgements_per_address_per_hour,
    )
    runtime.state["notifier"] = notifier
    return notifier.handlers()


SPEC = ServiceSpec(name="notifications", handlers=build_handlers)
