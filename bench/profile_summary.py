"""Where a service's CPU goes, from py-spy's collapsed stacks (`bench.e2e --profile DIR`).

    .venv/bin/python -m bench.profile_summary var/profile          # every <service>.txt
    .venv/bin/python -m bench.profile_summary var/profile --top 25

For each file: the share of samples per library of the innermost frame (self time), the
functions with the most self time, and hrcase's own functions (shared/, services/) by
inclusive time (a sample counts once for every distinct hrcase function on its stack).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# py-spy frames: "function (path/to/file.py:line)"; paths are shortened to the package.
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")
LIBRARIES = (
    "asyncpg",
    "aiormq",
    "aio_pika",
    "pamqp",
    "faststream",
    "pydantic",
    "pydantic_core",
    "fastapi",
    "starlette",
    "uvicorn",
    "httptools",
    "structlog",
    "prometheus_client",
    "opentelemetry",
    "jinja2",
    "aiosmtplib",
    "email",
    "cryptography",
    "json",
    "asyncio",
    "uvloop",
    "shared",
    "services",
)


def library(file: str) -> str:
    parts = re.split(r"[/\\]", file)
    for part in parts:
        name = part.removesuffix(".py")
        if name in LIBRARIES:
            return name
    return parts[0].removesuffix(".py") if parts and parts[0] else "?"


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for raw in stack.split(";"):
            match = FRAME.match(raw)
            frames.append((match["func"], match["file"]) if match else (raw, "?"))
        stacks.append((frames, int(count)))
    return stacks


def summarise(path: Path, top: int) -> None:
    stacks = parse(path)
    total = sum(count for _, count in stacks) or 1
    by_library: Counter[str] = Counter()
    by_self: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        func, file = frames[-1]
        by_library[library(file)] += count
        by_self[f"{func} ({file})"] += count
        own = {
            f"{f} ({p})"
            for f, p in frames
            if library(p) in ("shared", "services") and not f.startswith("<")
        }
        for name in own:
            inclusive[name] += count
    print(f"\n== {path.stem}: {total} samples holding the GIL")
    print(
        "  self time by library: "
        + ", ".join(f"{lib} {n / total:.0%}" for lib, n in by_library.most_common(12))
    )
    print("  top self time:")
    for name, n in by_self.most_common(top):
        print(f"    {n / total:6.1%}  {name}")
    print("  hrcase functions, inclusive:")
    for name, n in inclusive.most_common(top):
        print(f"    {n / total:6.1%}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for path in sorted(args.directory.glob("*.txt")):
        summarise(path, args.top)


if __name__ == "__main__":
    main()
