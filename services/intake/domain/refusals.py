"""Why intake will not carry out a request, in the field's terms (no HTTP here).

Use cases raise `Refused`; the entrypoints map its kind to a status code (the JSON API)
or an error page (the portal), so the rules do not know which door they were asked from.
"""

from __future__ import annotations

from typing import Literal

RefusalKind = Literal[
    "not_found",  # does not exist, or not for this person: existence is not leaked
    "forbidden",  # the person lacks the role, or must not act on this case
    "conflict",  # the case's state or an earlier request stands in the way
    "invalid",  # the request breaks a limit (attachments, ...)
    "too_large",  # an uploaded file is over its size limit
    "too_many_attempts",  # too many wrong keys: wait `retry_after_seconds`
]


class Refused(Exception):
    """A refused request: `kind` (what kind of no) and `detail` (the sentence a person
    reads); `retry_after_seconds` when waiting helps."""

    def __init__(
        self, kind: RefusalKind, detail: str, *, retry_after_seconds: int | None = None
    ) -> None:
        super().__init__(detail)
        self.kind: RefusalKind = kind
        self.detail = detail
        self.retry_after_seconds = retry_after_seconds
