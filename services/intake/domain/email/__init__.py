"""Inbound email's pure rules: bytes in, a decision out (no I/O).

- `parsing`: the parser and classifier (bytes in, `InboundEmail` or `Refusal` out).
- `charsets`, `html`, `tnef`: bytes to text the way mail readers do.
- `threads`: which case a message continues, and who may continue it.

The doors are `entrypoints/email_smtp.py` and `entrypoints/email_http.py`; the one
transaction that records a message is `application/email_ingest.py` (its SQL in
`adapters/email_store.py`).
"""
