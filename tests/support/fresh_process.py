"""Code run in a new interpreter at the project root: what a cold process imports or
answers, free of the modules this process has loaded already."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_fresh(code: str, *argv: str, env: Mapping[str, str] | None = None) -> Any:
    """Run ``code`` (``python -c``) in a new interpreter and return the last line it
    printed, decoded as JSON; a failure raises with the interpreter's stderr."""
    out = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"fresh interpreter failed ({out.returncode}):\n{out.stderr}"
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def loaded_after(imports: str, modules: Iterable[str]) -> list[str]:
    """Which of ``modules`` a new interpreter has loaded after running ``imports``."""
    wanted = tuple(modules)
    code = (
        f"import json, sys\n{imports}\n"
        f"print(json.dumps(sorted(m for m in {wanted!r} if m in sys.modules)))"
    )
    found: list[str] = run_fresh(code)
    return found
