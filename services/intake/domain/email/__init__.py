"""Inbound email: an SMTP listener and a raw-MIME HTTP hook, both into `open_case`/`add_message`.

- `parsing`: the pure parser and classifier (bytes in, `InboundEmail` or `Refusal` out).
- `threads`: which case a message continues, and who may continue it (pure).
- `ingest`: the one transaction that records a message (SQL lives in `store`).
- `smtp` / `http`: thin entrypoints; `wiring` starts and stops the listener.
"""
