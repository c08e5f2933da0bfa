"""What notifications reads from its environment (shared settings): SMTP, links, limits."""

from __future__ import annotations

from dataclasses import dataclass

from services.notifications.domain.conference_notices import ConferenceLinks
from services.notifications.domain.notices import MailConfig
from shared.settings import Settings


@dataclass(frozen=True)
class NotificationsConfig:
    smtp_host: str
    smtp_port: int
    mail: MailConfig
    # Acknowledgements one address may receive per hour (mail-bomb guard).
    acknowledgements_per_hour: int
    # Signed participant links in conference mails: key and validity in days.
    conference_links: ConferenceLinks

    @classmethod
    def from_settings(cls, settings: Settings) -> NotificationsConfig:
        return cls(
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            mail=MailConfig(portal_base_url=settings.portal_base_url, mail_from=settings.mail_from),
            acknowledgements_per_hour=settings.acknowledgements_per_address_per_hour,
            conference_links=ConferenceLinks(
                secret=settings.auth_jwt_secret, valid_days=settings.conference_link_valid_days
            ),
        )
