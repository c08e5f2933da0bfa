"""Reading the HR system's employee CSV export into directory records. No I/O beyond the text."""

from __future__ import annotations

import csv
import io

from services.routing.adapters.sql import Employee

COLUMNS = ("employee_id", "name", "email", "manager_id", "department", "active")
_TRUE = {"true", "1", "yes", "y", "t", "active"}
_FALSE = {"false", "0", "no", "n", "f", "inactive"}


class DirectoryFileError(ValueError):
    pass


def parse_directory_csv(text: str, source: str = "<csv>") -> list[Employee]:
    """Validate the export; errors name the file and the line."""
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(name.strip() for name in reader.fieldnames or ())
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DirectoryFileError(f"{source}:1: missing columns {missing}")
    employees: dict[str, Employee] = {}
    problems: list[str] = []
    for row in reader:
        line = reader.line_num
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        employee_id, name = cells["employee_id"], cells["name"]
        active = cells["active"].lower() or "true"
        if not employee_id or not name:
            problems.append(f"{source}:{line}: employee_id and name are required")
            continue
        if active not in _TRUE | _FALSE:
            problems.append(f"{source}:{line}: active must be true/false, got {cells['active']!r}")
            continue
        if employee_id in employees:
            problems.append(f"{source}:{line}: employee {employee_id} appears twice")
            continue
        if cells["manager_id"] == employee_id:
            problems.append(f"{source}:{line}: employee {employee_id} is their own manager")
            continue
        employees[employee_id] = Employee(
            employee_id=employee_id,
            name=name,
            email=cells["email"] or None,
            manager_id=cells["manager_id"] or None,
            department=cells["department"] or None,
            active=active in _TRUE,
        )
    if problems:
        raise DirectoryFileError("\n".join(problems))
    return list(employees.values())
