"""What a file is, read from its bytes, and how a download is served (domain/documents.py)."""

from __future__ import annotations

import io
import zipfile

import pytest

from services.intake.domain.documents import (
    DocumentRefused,
    content_disposition,
    detect,
    safe_filename,
    served_type,
)

PDF = b"%PDF-1.4\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
EML = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\nhi"
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 100


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (PDF, "payslip.pdf", "application/pdf"),
        (PNG, "scan.pdf", "image/png"),  # the bytes win over the name
        (b"Week 41: 12 hours overtime\n", "timesheet.txt", "text/plain"),
        ("Grüße aus Köln\n".encode(), "note", "text/plain"),
        (b"<!DOCTYPE html><html><body>x</body></html>", "notes.txt", "text/html"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "logo.png", "image/svg+xml"),
        (EML, "m.eml", "message/rfc822"),
        (_zip("[Content_Types].xml", "word/document.xml"), "letter.docx", None),
    ],
)
def test_the_type_is_read_from_the_bytes(content: bytes, name: str, expected: str | None) -> None:
    detected = detect(content, name)
    if expected is None:  # OOXML: a Word document, not "a zip"
        assert detected.content_type.startswith("application/vnd.openxmlformats-officedocument")
    else:
        assert detected.content_type == expected


@pytest.mark.parametrize(
    ("content", "name", "reason"),
    [
        (EXE, "payslip.pdf", "program"),
        (ELF, "photo.jpg", "program"),
        (b"#!/bin/sh\nrm -rf ~\n", "notes.txt", "program"),
        (b"echo hi", "run.bat", "programs and scripts"),
        (b"alert(1)", "app.js", "programs and scripts"),
        (_zip("a.txt"), "bundle.pdf", "archive"),
        (b"", "empty.pdf", "empty"),
        (b"\x00\x01\x02\x03" * 64, "blob.pdf", "not accepted"),
    ],
)
def test_programs_archives_and_unknown_bytes_are_refused_naming_the_file(
    content: bytes, name: str, reason: str
) -> None:
    with pytest.raises(DocumentRefused) as refused:
        detect(content, name)
    assert name in str(refused.value) and reason in str(refused.value)


@pytest.mark.parametrize(
    ("content_type", "name", "served"),
    [
        ("application/pdf", "a.pdf", "application/pdf"),
        ("text/html", "a.txt", "application/octet-stream"),
        ("image/svg+xml", "a.svg", "application/octet-stream"),
        ("application/xml", "a.xml", "application/octet-stream"),
        ("text/plain", "page.html", "application/octet-stream"),  # the name could run too
        ("text/plain", "x.js", "application/octet-stream"),
        ("text/plain", "a.txt", "text/plain"),
    ],
)
def test_what_could_run_script_is_served_as_an_opaque_download(
    content_type: str, name: str, served: str
) -> None:
    assert served_type(content_type, name) == served


def test_the_download_name_has_an_ascii_fallback_and_the_utf8_name() -> None:
    disposition = content_disposition('Grüße "Bericht"; 1.pdf')
    assert disposition.startswith('attachment; filename="')
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and '"' not in fallback and ";" not in fallback
    assert "filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22Bericht%22%3B%201.pdf" in disposition


def test_names_are_reduced_to_a_safe_display_name() -> None:
    assert safe_filename("C:\\Users\\sam\\..\\payslip.pdf") == "payslip.pdf"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("a\x00b\r\n.txt") == "ab.txt"
    assert safe_filename("   ") == "attachment"
