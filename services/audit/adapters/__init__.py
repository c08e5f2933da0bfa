"""Audit adapters: SQL on the audit schema."""
