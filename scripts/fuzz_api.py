"""Fuzz the v1 API with schemathesis, every check on, and print what it found.

The long form of ``tests/api/test_openapi_contract.py``: the same app in-process (ASGI,
embedded backend on a throwaway SQLite database and folder), many more examples, and
the stateful phase (links between operations: create, then read, cancel, delete).
Prints, per operation, the cases sent and the distinct failures, then the totals; the
README's reliability table comes from here.

    .venv/bin/python scripts/fuzz_api.py                  # 100 examples an operation
    .venv/bin/python scripts/fuzz_api.py -n 1000 --seed 7 --no-stateful
    .venv/bin/python scripts/fuzz_api.py --include '/models' -v   # failures in full

Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422"]
REJECTIONS += ["428", "429", "5xx"]


UPLOADS = {"POST /api/v1/datasets", "POST /api/v1/datasets/{dataset_id}/versions"}


@dataclass
class Tally:
    cases: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # title → one sample
    refused_files: int = 0  # uploads whose file is no CSV or Parquet table: correct


def _refused_file(label: str, check: str, response: Any) -> bool:
    """An upload refused for its file's content (not a table), which no schema says:
    the test counts it as correct, and so does this report (apart)."""
    if label not in UPLOADS or check != "positive_data_acceptance" or response is None:
        return False
    if response.status_code == 415:
        return True
    try:
        details = json.loads(response.content)["error"]["details"]
    except (ValueError, KeyError, TypeError):
        return False
    return response.status_code == 422 and {d.get("field") for d in details} == {"file"}


def _config(args: argparse.Namespace) -> Any:
    from schemathesis.config import SchemathesisConfig

    return SchemathesisConfig.from_dict(
        {
            "seed": args.seed,
            "generation": {"max-examples": args.examples, "database": "none"},
            # 413 is a refusal too (a batch over its maxItems is refused before its
            # items are read), as in tests/api/test_openapi_contract.py
            "checks": {
                "enabled": True,
                "negative_data_rejection": {"expected-statuses": REJECTIONS},
            },
            "phases": {"stateful": {"enabled": args.stateful}},
            "workers": 1,
            "continue-on-failure": True,  # count every failure, not the first only
        }
    )


def _context(root: Path) -> Any:
    from shared.adapters.blobs.factory import make_blob_store
    from shared.config import Settings
    from shared.container import Container, use
    from shared.db.migrate import upgrade
    from shared.db.session import Database

    url = f"sqlite:///{root / 'fuzz.db'}"
    upgrade(url)
    settings = Settings(data_dir=root / "data", log_json=False, max_upload_mb=5)
    context = Container(
        settings=settings, db=Database(url), blobs=make_blob_store(settings)
    )
    use(context)
    return context


def run(args: argparse.Namespace) -> int:
    import logging

    import schemathesis
    from schemathesis.engine import Status, events, from_schema

    from functions.api.app import create_asgi_app

    logging.disable(logging.ERROR)  # the unhandled errors are counted, not logged
    with tempfile.TemporaryDirectory(prefix="sh-fuzz-") as tmp:
        context = _context(Path(tmp))
        app = create_asgi_app(gateway_secret="")
        schema = schemathesis.openapi.from_asgi(
            "/api/v1/openapi.json", app, config=_config(args)
        )
        if args.include:
            schema = schema.include(path_regex=args.include)
        tallies: dict[str, Tally] = defaultdict(Tally)
        started = time.perf_counter()
        try:
            for event in from_schema(schema).execute():
                if isinstance(event, events.ScenarioFinished):
                    _count(event.recorder, tallies, args.verbose)
                elif isinstance(event, events.NonFatalError):
                    tallies[event.label].failures[f"error: {event.value!r}"[:200]] = ""
                elif isinstance(event, events.FatalError):
                    raise event.exception
        finally:
            context.close()
        elapsed = time.perf_counter() - started
    return _report(tallies, elapsed, Status)


def _count(recorder: Any, tallies: dict[str, Tally], verbose: bool) -> None:
    from schemathesis.engine import Status

    for case_id, node in recorder.cases.items():
        label = node.value.operation.label
        tally = tallies[label]
        tally.cases += 1
        interaction = recorder.interactions.get(case_id)
        response = interaction.response if interaction is not None else None
        for check in recorder.checks.get(case_id, []):
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            if _refused_file(label, check.name, response):
                tally.refused_files += 1
                continue
            failure = check.failure_info.failure
            status = getattr(failure, "status_code", None)
            title = f"{check.name}: {failure.title}" + (
                f" ({status})" if status else ""
            )
            if title not in tally.failures:
                sample = f"{failure.message}\n    {check.failure_info.code_sample}"
                tally.failures[title] = sample
                if verbose:
                    print(f"\n{node.value.operation.label} — {title}\n    {sample}\n")


def _report(tallies: dict[str, Tally], elapsed: float, status: Any) -> int:
    width = max((len(label) for label in tallies), default=10)
    print(f"\n{'operation':<{width}}  {'cases':>7}  failures")
    for label in sorted(tallies):
        tally = tallies[label]
        refused = (
            f"  ({tally.refused_files} uploads refused for their file's content)"
            if tally.refused_files
            else ""
        )
        print(f"{label:<{width}}  {tally.cases:>7}  {len(tally.failures)}{refused}")
        for title in sorted(tally.failures):
            print(f"{'':<{width}}           - {title}")
    cases = sum(t.cases for t in tallies.values())
    failures = sum(len(t.failures) for t in tallies.values())
    failing = sum(1 for t in tallies.values() if t.failures)
    print(
        f"\n{len(tallies)} operations, {cases} cases, {failures} distinct failures "
        f"in {failing} operations, {elapsed:.0f} s"
    )
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-n", "--examples", type=int, default=100, help="examples per operation"
    )
    parser.add_argument("--seed", type=int, default=0, help="for a reproducible run")
    parser.add_argument(
        "--no-stateful",
        dest="stateful",
        action="store_false",
        help="skip the stateful phase (links between operations)",
    )
    parser.add_argument("--include", help="only paths matching this regex")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print each failure in full"
    )
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
