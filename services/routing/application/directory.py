"""Importing the HR system's employee directory (the org chart for conflicts of interest)."""

from __future__ import annotations

from services.routing.adapters import sql
from shared.uow import UnitOfWork


async def import_directory(
    uow: UnitOfWork, employees: list[sql.Employee], *, full_export: bool
) -> int:
    """Upsert `employees` in one transaction (a file with any bad row changes nothing).

    With `full_export` the file is the whole workforce: anyone missing from it is marked
    inactive. Returns how many were marked inactive (0 without `full_export`).
    """
    async with uow:
        await sql.upsert_employees(uow.conn, employees)
        if full_export:
            return await sql.deactivate_missing(uow.conn, [e.employee_id for e in employees])
        return 0
