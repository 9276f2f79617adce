"""Exit checks asked once per rule per cycle give every position the reason it gets alone.

`Runtime._exit_reasons` checks the risk limits per position, then asks each
rule's exit clause once for all of its positions that no limit closes
(`engine.check_exits`). Here every cycle of replays that open, hold and close
many positions (the year benchmark's rules on three days of its synthetic
recording, with and without risk limits) compares it with `_exit_reason`
asked position by position (`engine.check_exit`), and the ledgers' closes
show that every kind of reason was met."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from trading_helpers import paper_runtime, sql

from rulebook.lang import load_texts
from rulebook.market import ReplaySource
from rulebook.trading import Ledger, RulesetHolder, Runtime, load_config

ROOT = Path(__file__).parents[1]
BENCH = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(BENCH))
    try:
        from bench_paper_runtime import generate
    finally:
        sys.path.remove(str(BENCH))
    path = tmp_path_factory.mktemp("exits") / "three-days.jsonl"
    generate(path, 72, 50)
    return path


@pytest.mark.parametrize("limits", ["", "    stop_loss 0.05%\n    max_hold 20h\n"])
def test_batched_exit_reasons_are_the_one_by_one_reasons(
    recording: Path, tmp_path: Path, limits: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (BENCH / "year.rules").read_text()
    if limits:
        text = text.replace("    max_open_positions 20\n", "    max_open_positions 20\n" + limits)
        assert limits in text
    loaded = load_texts({"year.rules": text})
    assert loaded.ok, [d.message for d in loaded.diagnostics]
    config = load_config(BENCH / "year.toml")
    runtime = paper_runtime(
        RulesetHolder(loaded.ruleset), config, Ledger(tmp_path / "p.db"), source="replay"
    )
    batched = Runtime._exit_reasons
    compared = []

    def both(self: Runtime, held, rs, env, t):  # type: ignore[no-untyped-def]
        got = batched(self, held, rs, env, t)
        assert got == [self._exit_reason(p, rs, env, t) for p in held]
        compared.append(len(held))
        return got

    monkeypatch.setattr(Runtime, "_exit_reasons", both)
    summary = runtime.run(ReplaySource(recording))
    assert summary.failed is None and summary.cycles == 72
    reasons = [r["close_reason"] for r in sql(runtime.ledger, "select close_reason from positions")]
    assert sum(compared) > 300  # positions held across the cycles, each compared
    assert any(r and r.startswith("exit when of rule") for r in reasons)
    if limits:
        assert any(r and r.startswith("max_hold") for r in reasons)
        assert any(r and r.startswith("stop_loss") for r in reasons)
