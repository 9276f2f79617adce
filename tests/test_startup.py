"""What the command line imports before it does anything (not timed: the times
are benchmarks/bench_startup.py's). A command loads only the stages it uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"numpy", "ccxt", "sqlite_utils", "apprise", "watchfiles", "pydantic", "asyncio", "lark"}
STAGES = {f"rulebook.{s}" for s in ("lang", "market", "engine", "trading", "reload", "app")}

# Runs the CLI in this process, then reports the heavy libraries and rulebook
# stages it imported (on stderr: the command's own output is on stdout).
PROBE = """
import json, sys
sys.argv = ["rulebook", *json.loads(sys.argv[1])]
from rulebook.cli import main
try:
    main()
except SystemExit:
    pass
print("LOADED=" + json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_by(*args: str) -> set[str]:
    """The heavy libraries and the rulebook stages that `rulebook *args` imports."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(ln for ln in done.stderr.splitlines() if ln.startswith("LOADED="))
    modules = json.loads(line.removeprefix("LOADED="))
    tops = {m.split(".")[0] for m in modules}
    stages = {".".join(m.split(".")[:2]) for m in modules if m.startswith("rulebook.")}
    return (tops & HEAVY) | (stages & STAGES)


def test_help_imports_no_stage_and_no_heavy_library() -> None:
    assert loaded_by("--help") == set()


def test_a_commands_help_imports_no_stage() -> None:
    # typer itself imports pydantic to show or coerce a command's parameters
    assert loaded_by("run", "--help") <= {"pydantic"}


def test_validate_imports_the_language_stage_only() -> None:
    assert loaded_by("validate", "strategies/") == {"rulebook.lang", "rulebook.app", "lark", "pydantic"}


def test_dry_run_of_a_recording_does_not_load_ccxt_or_the_ledger() -> None:
    loaded = loaded_by(
        "dry-run", "strategies/", "--snapshot",
        "examples/binance-bybit-okx-btc-eth-2023-2024.jsonl", "--json",
    )
    assert not loaded & {"ccxt", "sqlite_utils", "apprise", "watchfiles", "rulebook.trading"}


def test_a_replay_without_watch_or_notify_loads_no_live_notify_or_watch_library(tmp_path) -> None:
    rec = tmp_path / "rec.jsonl"
    example = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
    rec.write_text("".join(example.read_text().splitlines(keepends=True)[:60]))
    loaded = loaded_by(
        "run", "strategies/", "--paper", "--replay", str(rec), "--db", str(tmp_path / "p.db"),
        "--no-watch",
    )  # fmt: skip
    assert {"rulebook.trading", "sqlite_utils", "numpy"} <= loaded  # it did run a replay
    # ccxt is live only, apprise only with a [notify] channel, watchfiles only when
    # watching, asyncio only for live settled rates
    assert not loaded & {"ccxt", "apprise", "watchfiles", "asyncio"}
