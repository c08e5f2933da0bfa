"""The HR system's CSV export: parsed strictly, errors with file and line."""

import pytest

from services.routing.adapters.directory_csv import DirectoryFileError, parse_directory_csv

HEADER = "employee_id,name,email,manager_id,department,active\n"


def test_rows_become_employees_with_their_manager():
    employees = parse_directory_csv(
        HEADER + "E-1,Ana,ana@example.com,,Ops,true\nE-2, Bo ,,E-1,Ops,no\nE-3,Cy,,E-1,,\n"
    )
    assert [(e.employee_id, e.name, e.manager_id, e.active) for e in employees] == [
        ("E-1", "Ana", None, True),
        ("E-2", "Bo", "E-1", False),
        ("E-3", "Cy", "E-1", True),
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("E-1,,a@example.com,,Ops,true\n", "f.csv:2: employee_id and name are required"),
        ("E-1,Ana,,,Ops,perhaps\n", "f.csv:2: active must be true/false"),
        ("E-1,Ana,,,Ops,true\nE-1,Ana,,,Ops,true\n", "f.csv:3: employee E-1 appears twice"),
        ("E-1,Ana,,E-1,Ops,true\n", "f.csv:2: employee E-1 is their own manager"),
    ],
)
def test_bad_rows_are_refused_with_their_line(rows, message):
    with pytest.raises(DirectoryFileError, match=message):
        parse_directory_csv(HEADER + rows, "f.csv")


def test_missing_columns_are_named():
    with pytest.raises(DirectoryFileError, match=r"f.csv:1: missing columns \['manager_id'"):
        parse_directory_csv("employee_id,name,email,department,active\n", "f.csv")
