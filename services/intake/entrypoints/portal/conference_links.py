"""The page a conference participant opens from their mail: no account, no session.

- GET  /portal/conference-links/{token}: that one conference (purpose, when in the plan's
  time zone, where or the video link, agenda, desired outcomes, participants by name and
  role; once summarised the agreed points, actions and objections).
- POST /portal/conference-links/{token}/acknowledgement: acknowledge receipt of the summary
  (idempotent) -> conference.acknowledged.
- POST /portal/conference-links/{token}/objection (field `objection`, 1..5000 characters)
  -> conference.objection_raised.

The token (shared.participant_links) is the only credential: this router resolves no
session, so a signed-in member of staff sees exactly what the participant sees, and it
sets no cookie. The page links nowhere else in the portal. Expired links are 410, forged
or malformed ones 403 (tokens over MAX_TOKEN_LENGTH are refused unread, and a client
sending many bad tokens is slowed down with 429), a conference not known here 404, a
participant taken off it 403: each a plain page, never a stack trace. Responses are not
cached, not indexed and send no referrer (the token is in the URL).
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData

from services.intake.application import participant_doors
from services.intake.domain.participant_views import MAX_TOKEN_LENGTH, OBJECTION_MAX_LENGTH
from services.intake.domain.refusals import Refused
from services.intake.entrypoints.portal.conference_present import present
from services.intake.entrypoints.portal.pages import TEMPLATES
from services.intake.entrypoints.web import client_of, runtime_of
from shared.participant_links import (
    PATH_PREFIX,
    InvalidLink,
    ParticipantLink,
    verify_participant_link,
)
from shared.settings import get_settings

log = structlog.get_logger(__name__)

# Not behind portal_router(): no session is resolved, so none can widen the page.
router = APIRouter(include_in_schema=False)

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
}


class ObjectionForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    objection: str = Field(min_length=1, max_length=OBJECTION_MAX_LENGTH)


class BadLinkThrottle:
    """At most `limit` refused tokens per client address in `window` seconds (then 429):
    a token has 256 bits of HMAC, so this only spares the service a guesser's load."""

    def __init__(self, limit: int = 30, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.setdefault(client, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, client: str) -> bool:
        return len(self._recent(client, time.monotonic())) >= self.limit

    def refused(self, client: str) -> None:
        if len(self._seen) >= self.max_clients:
            self._seen.clear()  # bounded memory; forgetting only makes it more lenient
        self._recent(client, time.monotonic()).append(time.monotonic())


THROTTLE = BadLinkThrottle()

# What each refusal says to a person who followed a link (no detail of the case).
PAGES: dict[str, tuple[int, str, str]] = {
    "expired": (
        410,
        "This link has expired",
        "Ask the case manager who sent it for a new link.",
    ),
    "invalid": (
        403,
        "This link is not valid",
        "Check that the whole link from your email was opened, or ask the case manager who"
        " sent it for a new one.",
    ),
    "throttled": (
        429,
        "Too many attempts",
        "Too many links that are not valid were opened from here. Wait a minute and retry.",
    ),
    "cross_site": (
        403,
        "This form was not sent from this page",
        "Open the link from your email again and use the buttons on that page.",
    ),
}
REFUSAL_TITLES = {
    "not_found": "This conference is not available",
    "forbidden": "This conference is not available to you",
    "conflict": "That cannot be done yet",
}


def _respond(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


def _render(name: str, status_code: int = 200, **context: Any) -> Response:
    html = TEMPLATES.get_template(name).render(**context)
    return _respond(HTMLResponse(html, status_code=status_code))


def _problem(kind: str) -> Response:
    status_code, title, hint = PAGES[kind]
    response = _render("conference_link_problem.html.j2", status_code, title=title, hint=hint)
    if kind == "throttled":
        response.headers["Retry-After"] = "60"
    return response


def _refusal(refused: Refused) -> Response:
    status_code = {"not_found": 404, "forbidden": 403, "conflict": 409}.get(refused.kind, 403)
    title = REFUSAL_TITLES.get(refused.kind, "This conference is not available")
    hint = refused.detail[:1].upper() + refused.detail[1:] + "."
    return _render("conference_link_problem.html.j2", status_code, title=title, hint=hint)


def _client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class LinkProblem(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _grant(request: Request, token: str) -> ParticipantLink:
    """The link's grant, or LinkProblem naming the page to show."""
    client = _client_key(request)
    if THROTTLE.blocked(client):
        raise LinkProblem("throttled")
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN.match(token):
        THROTTLE.refused(client)
        raise LinkProblem("invalid")
    try:
        return verify_participant_link(get_settings().auth_jwt_secret, token)
    except InvalidLink as exc:
        THROTTLE.refused(client)
        log.info("participant_link_refused", reason=str(exc))
        raise LinkProblem("expired" if "expired" in str(exc) else "invalid") from None


def _same_origin(request: Request) -> bool:
    """Refuse a POST whose Origin (else Referer) names another site. Under this page's
    `Referrer-Policy: no-referrer` browsers send `Origin: null` for its own forms, so
    "null" and no header pass: the token in the path is the credential, which a forging
    site does not have."""
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value and value != "null":
            parts = urlsplit(value)
            return parts.scheme in ("http", "https") and parts.netloc == request.headers.get("host")
        if value:
            return True
    return True


async def _form(request: Request) -> FormData:
    try:
        return await request.form(max_files=0, max_fields=5)
    except Exception:  # malformed body, too many fields
        return FormData()


def _page_url(token: str, done: str | None = None) -> str:
    return PATH_PREFIX + token + (f"?done={done}" if done else "")


DONE = {
    "acknowledged": "Thank you: your receipt of the summary is recorded.",
    "objection": "Your objection is recorded and has been passed to the case manager.",
}


async def _conference_page(
    request: Request,
    token: str,
    link: ParticipantLink,
    *,
    status_code: int = 200,
    error: str | None = None,
    draft: str = "",
) -> Response:
    view = await participant_doors.open_by_link(runtime_of(request), link, client_of(request))
    return _render(
        "conference_link.html.j2",
        status_code,
        conference=present(view),
        action_base=PATH_PREFIX + token,
        done=DONE.get(request.query_params.get("done", "")),
        error=error,
        draft=draft,
        objection_max=OBJECTION_MAX_LENGTH,
    )


@router.get(PATH_PREFIX + "{token}")
async def conference_link_page(token: str, request: Request) -> Response:
    try:
        link = _grant(request, token)
        return await _conference_page(request, token, link)
    except LinkProblem as problem:
        return _problem(problem.kind)
    except Refused as refused:
        return _refusal(refused)


@router.post(PATH_PREFIX + "{token}/acknowledgement")
async def acknowledge(token: str, request: Request) -> Response:
    try:
        link = _grant(request, token)
        if not _same_origin(request):
            raise LinkProblem("cross_site")
        await participant_doors.acknowledge_by_link(runtime_of(request), link)
    except LinkProblem as problem:
        return _problem(problem.kind)
    except Refused as refused:
        return _refusal(refused)
    return _respond(RedirectResponse(_page_url(token, "acknowledged"), status_code=303))


@router.post(PATH_PREFIX + "{token}/objection")
async def raise_objection(token: str, request: Request) -> Response:
    try:
        link = _grant(request, token)
        if not _same_origin(request):
            raise LinkProblem("cross_site")
        form = await _form(request)
        raw = form.get("objection")
        text = raw if isinstance(raw, str) else ""
        try:
            objection = ObjectionForm(objection=text).objection
        except ValidationError:
            error = (
                f"Write your objection (at most {OBJECTION_MAX_LENGTH} characters)."
                if text.strip()
                else "Write your objection before sending it."
            )
            return await _conference_page(
                request,
                token,
                link,
                status_code=422,
                error=error,
                draft=text[:OBJECTION_MAX_LENGTH],
            )
        await participant_doors.object_by_link(runtime_of(request), link, objection)
    except LinkProblem as problem:
        return _problem(problem.kind)
    except Refused as refused:
        return _refusal(refused)
    return _respond(RedirectResponse(_page_url(token, "objection"), status_code=303))
