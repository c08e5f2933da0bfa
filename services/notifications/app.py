"""The notifications service: every way out (email today), delivery records and outcomes."""

from __future__ import annotations

from collections.abc import Mapping

from services.notifications.adapters.smtp import SmtpMailer
from services.notifications.application.handlers import Notifier
from services.notifications.config import NotificationsConfig
from services.notifications.domain.notices import load_templates
from services.notifications.entrypoints.subscriptions import SUBSCRIPTIONS
from shared.consumer import Handler
from shared.service import Runtime, ServiceSpec


async def build_handlers(runtime: Runtime) -> Mapping[str, Handler]:
    config = NotificationsConfig.from_settings(runtime.settings)
    mailer = SmtpMailer(config.smtp_host, config.smtp_port)
    runtime.closers.append(mailer.close)
    notifier = Notifier(
        templates=load_templates(),
        config=config.mail,
        mailer=mailer,
        acknowledgements_per_hour=config.acknowledgements_per_hour,
        conference_links=config.conference_links,
    )
    runtime.state["notifier"] = notifier
    return notifier.handlers()


SPEC = ServiceSpec(name="notifications", subscriptions=SUBSCRIPTIONS, handlers=build_handlers)
