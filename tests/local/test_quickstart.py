"""The README's quick start, run as a new user runs it: every ```bash block marked
``<!-- quickstart -->`` in README.md, then every one marked ``<!-- example -->`` in
docs/guide.md, in order, in one bash session, against the local runtime (SQLite, a
temporary data dir, a free port on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_server import ROOT, LocalServer

QUICKSTART = "<!-- quickstart -->"
EXAMPLE = "<!-- example -->"
README_API = "http://localhost:7071/api/v1"
STEP = "@@quickstart-step"


def marked_blocks(path: Path, mark: str) -> list[str]:
    """The ```bash blocks of ``path`` right after a line that is ``mark``."""
    text = path.read_text()
    blocks = re.findall(
        r"^" + re.escape(mark) + r"\n```bash\n(.*?)\n```", text, re.S | re.M
    )
    marks = re.findall(r"^" + re.escape(mark) + "$", text, re.M)
    assert len(marks) == len(blocks), f"{path}: a {mark} not followed by a bash block"
    return blocks


def json_answers(output: str) -> Iterator[dict[str, Any]]:
    """Every line of ``output`` that is a JSON object."""
    for line in output.splitlines():
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                yield value


def test_the_blocks_are_found_and_stop_at_the_first_failure() -> None:
    blocks = marked_blocks(ROOT / "README.md", QUICKSTART)
    assert len(blocks) >= 4
    assert len(marked_blocks(ROOT / "docs" / "guide.md", EXAMPLE)) >= 4
    assert README_API in blocks[0], "the first block must set API to the default URL"
    script = "\n".join(blocks)
    for flags in re.findall(r"\bcurl\s+(\S+)", script):
        assert flags.startswith("-") and "f" in flags, f"curl {flags}: use curl -f"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path / "data")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.slow
def test_the_quick_start_and_the_guide_run_as_written(
    server: LocalServer, tmp_path: Path
) -> None:
    quickstart = marked_blocks(ROOT / "README.md", QUICKSTART)
    blocks = quickstart + marked_blocks(ROOT / "docs" / "guide.md", EXAMPLE)
    api = f"http://127.0.0.1:{server.port}/api/v1"
    steps = [
        f"echo {STEP} {i}\n{block.replace(README_API, api)}"
        for i, block in enumerate(blocks)
    ]
    script = "set -euo pipefail\n" + "\n".join(steps) + "\n"
    # The user's working directory is the project root; a copy of its entrances keeps
    # the files the quick start writes out of the checkout.
    work = tmp_path / "work"
    work.mkdir()
    for name in (".venv", "scripts"):
        (work / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {
        "NO_PROXY": "*",
        "no_proxy": "*",
    }
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    outputs = done.stdout.split(STEP)[1:]
    ran = len(outputs)
    report = (
        f"exit {done.returncode} in step {ran - 1} of {len(blocks)}:\n"
        f"{blocks[ran - 1] if ran else ''}\n--- stdout\n{done.stdout[-4000:]}\n"
        f"--- stderr\n{done.stderr[-4000:]}\n--- server\n{server.tail()}"
    )
    assert done.returncode == 0, report
    assert ran == len(blocks), report
    quickstart_output = STEP.join(outputs[: len(quickstart)])
    scored = [
        a["data"]
        for a in json_answers(quickstart_output)
        if isinstance(a.get("data"), dict) and "fraud_score" in a["data"]
    ]
    assert scored, report
    assert all(0.0 <= s["fraud_score"] <= 1.0 for s in scored), report
    assert (work / "transactions.csv").is_file()


def test_every_pinned_dependency_says_why_it_is_there() -> None:
    doc = (ROOT / "docs" / "dependencies.md").read_text().lower()
    named = {
        name.strip().split("[")[0]
        for row in re.findall(r"^\| ([^|]+) \|", doc, re.M)
        for name in row.split(",")
    }
    pinned = {
        re.split(r"[\[=<>~ ]", line, maxsplit=1)[0].lower()
        for req in ("requirements.txt", "requirements-dev.txt")
        for line in (ROOT / req).read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    assert pinned - named == set(), "add a row to docs/dependencies.md"
