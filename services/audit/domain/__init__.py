"""Pure audit domain: the hash chain (no I/O)."""
