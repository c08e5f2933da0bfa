"""Errors the consumer runtime treats specially."""


class PermanentError(Exception):
    """This message can never be handled (bad input): dead-letter it now, with the reason."""
