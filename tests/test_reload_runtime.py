"""Issue 6, item 6: a running paper replay whose rules are edited mid-run.

The replay's pace hook runs between cycles on the runtime's thread; it saves
an edit to the rule file the way an editor does and waits (with a timeout)
for the watcher to swap or refuse it, so each edit lands between two known
cycles. Recording: SOL on binance and bybit, funding 0.01% and 0.04% per 8h
(a 0.03% spread) for six hours, then bybit drops to 0% (spread -0.01%).
No settlement falls inside the replay.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from test_trading_notify import endpoint  # noqa: F401 - the local notification endpoint
from trading_helpers import T0, H, pair_rows, paper_runtime, sql, write_jsonl

from rulebook.app import ledger_status
from rulebook.lang import load_ruleset
from rulebook.market import ReplaySource
from rulebook.reload import HotReload, position_rule_states
from rulebook.trading import Ledger, Notifier, RulesetHolder, TradingConfig

TIMEOUT = 5.0


def rule(threshold: str, exit_clause: str = "spread(SOL, bybit, binance) < 0%") -> str:
    return (
        "rule sol_spread:\n"
        f"    when spread(SOL, bybit, binance) > {threshold}\n"
        "    then hedge 1000 USDT\n"
        f"    exit when {exit_clause}\n"
    )


RISK = "risk:\n    max_total_exposure 5000 USDT\n"
V1 = rule("0.05%")  # the spread (0.03%) is below it: no entry
V2 = rule("0.02%")  # now above it: an entry from the next cycle
BROKEN = V2.replace("bybit, binance) >", "bybit, binanse) >")  # a typo: E102
# the fix also changes the exit clause: the open position must keep the old one
V3_CHANGED = rule("0.02%", exit_clause="held > 100h")
# ... or removes the rule for another one, on a coin this replay does not have
V3_REMOVED = rule("0.02%").replace("sol_spread", "eth_spread").replace("SOL", "ETH")


def recording(tmp_path: Path) -> Path:
    far = T0 + 100 * H  # next settlement: after the replay
    rows = []
    for k in range(8):
        bybit_rate = 0.0004 if k < 6 else 0.0  # spread 0.03% for c0..c5, then -0.01%
        rows += pair_rows(T0 + k * H, "SOL", (100.0, 0.0001), (100.1, bybit_rate), far)
    return write_jsonl(tmp_path / "rec.jsonl", rows)


def save_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.mark.parametrize(("fix", "state"), [(V3_CHANGED, "changed"), (V3_REMOVED, "removed")])
def test_edits_mid_replay(tmp_path: Path, fix: str, state: str) -> None:
    rules_dir = tmp_path / "strategies"
    rules_dir.mkdir()
    (rules_dir / "risk.rules").write_text(RISK)
    spread_file = rules_dir / "spread.rules"
    spread_file.write_text(V1)
    loaded = load_ruleset([rules_dir])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    db = tmp_path / "paper.db"
    runtime = paper_runtime(holder, TradingConfig(), Ledger(db), source="replay")
    printed: list[str] = []
    reloader = HotReload([rules_dir], holder, db, echo=printed.append)
    watcher = reloader.watcher
    seen: dict[str, object] = {}

    def pace(prev: int | None, at: int) -> None:
        """Between cycles: save an edit, wait for its outcome."""
        if at == T0 + 2 * H:  # after c0, c1 under V1
            version = holder.version
            spread_file.write_text(V2)  # truncate-then-write
            assert holder.wait_for_version(version + 1, TIMEOUT), "V2 never went live"
        elif at == T0 + 4 * H:  # after c2 (the entry) and c3
            failures = watcher.failures
            save_atomically(spread_file, BROKEN)
            wait_until(lambda: watcher.failures == failures + 1, "the refusal")
            seen["positions_after_refusal"] = list(runtime.executor.positions)
        elif at == T0 + 6 * H:  # after c4, c5 under V2 still
            version = holder.version
            save_atomically(spread_file, fix)
            assert holder.wait_for_version(version + 1, TIMEOUT), "the fix never went live"
            # the ledger record follows the swap, on the watcher's thread; its line is printed last
            wait_until(lambda: sum(" live " in p for p in printed) == 2, "the record of the fix")
            seen["positions_after_fix"] = list(runtime.executor.positions)
            seen["states_after_fix"] = position_rule_states(runtime.ledger)

    with reloader:
        summary = runtime.run(ReplaySource(recording(tmp_path)), pace=pace)
    assert watcher.error is None
    assert summary.cycles == 8
    led = runtime.ledger

    # each cycle ran on exactly one ruleset: V1 for c0-c1, V2 for c2-c5, the fix from c6
    shas = [c["ruleset_sha"] for c in sql(led, "select ruleset_sha from cycles order by ts")]
    v1, v2, v3 = shas[0], shas[2], shas[6]
    assert shas == [v1] * 2 + [v2] * 4 + [v3] * 2
    assert len({v1, v2, v3}) == 3

    # the new threshold took effect from the next cycle: the entry is at c2, not before
    positions = sql(led, "select * from positions order by id")
    assert len(positions) == 1  # never lost, never duplicated by a reload
    (pos,) = positions
    assert pos["rule"] == "sol_spread" and pos["ruleset_sha"] == v2
    assert pos["opened_at"] == T0 + 2 * H
    decisions = [
        (o["cycle_ts"], o["decision"])
        for o in sql(led, "select cycle_ts, decision from opportunities where rule='sol_spread'")
    ]
    # fired from c2 to c5; the ledger records the changes only (issue 13): it
    # appeared (open), changed (already_open), and was gone at c6
    assert decisions == [
        (T0 + 2 * H, "open"),
        (T0 + 3 * H, "already_open"),
        (T0 + 6 * H, "gone"),
    ]

    # the broken edit: refused, recorded, printed in the spec format; the position stayed
    (failed,) = sql(led, "select detail from events where kind = 'reload_failed'")
    detail = json.loads(failed["detail"])
    assert detail["kept_sha256"] == v2
    assert [d["code"] for d in detail["diagnostics"]] == ["E102"]
    assert any("error[E102]: unknown exchange 'binanse'" in p for p in printed)
    assert seen["positions_after_refusal"] == [pos["id"]]

    # the fix: live from c6, recorded with what it changed; the position survived it
    assert seen["positions_after_fix"] == [pos["id"]]
    assert seen["states_after_fix"] == {pos["id"]: state}
    reloads = [
        json.loads(e["detail"])
        for e in sql(led, "select detail from events where kind='reload' order by id")
    ]
    assert [(r["previous_sha256"], r["sha256"]) for r in reloads] == [(v1, v2), (v2, v3)]
    assert reloads[0]["changed"] == ["sol_spread"]
    rows = {r["sha256"]: r for r in sql(led, "select * from rulesets")}
    assert json.loads(rows[v2]["changed"]) == ["sol_spread"]
    if state == "changed":
        assert json.loads(rows[v3]["changed"]) == ["sol_spread"]
    else:
        assert json.loads(rows[v3]["removed"]) == ["sol_spread"]
        assert json.loads(rows[v3]["added"]) == ["eth_spread"]

    # it kept the exit clause it was opened with: V2's `spread < 0%` closes it at c6,
    # although the live ruleset's rule (changed or gone) would not have
    assert pos["status"] == "closed"
    assert pos["closed_at"] == T0 + 6 * H
    assert pos["close_reason"] == "exit when of rule sol_spread"
    assert ledger_status(led)["stats"]["positions_on_old_rules"] == 0  # closed now


def test_status_marks_a_position_whose_rule_changed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rulebook.cli import app

    rules_dir = tmp_path / "strategies"
    rules_dir.mkdir()
    spread_file = rules_dir / "spread.rules"
    spread_file.write_text(V2)
    loaded = load_ruleset([rules_dir])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    db = tmp_path / "paper.db"
    runtime = paper_runtime(holder, TradingConfig(), Ledger(db), source="replay")
    printed: list[str] = []

    def pace(prev: int | None, at: int) -> None:
        if at == T0 + 2 * H:  # the position opened at c0; change its rule's exit clause
            save_atomically(spread_file, V3_CHANGED)
            wait_until(lambda: any(" live " in p for p in printed), "the reload")

    with HotReload([rules_dir], holder, db, echo=printed.append):
        rec = write_jsonl(
            tmp_path / "short.jsonl",
            [
                r
                for k in range(3)
                for r in pair_rows(
                    T0 + k * H, "SOL", (100.0, 0.0001), (100.1, 0.0004), T0 + 100 * H
                )
            ],
        )
        runtime.run(ReplaySource(rec), pace=pace)
    runtime.ledger.close()

    result = CliRunner().invoke(app, ["status", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "sol_spread * rule changed" in result.output
    assert "keeps the exit clause it was opened with" in result.output
    as_json = CliRunner().invoke(app, ["status", "--db", str(db), "--json"])
    data = json.loads(as_json.output)
    assert [p["rule_state"] for p in data["positions"]] == ["changed"]
    assert data["stats"]["positions_on_old_rules"] == 1


def test_reloads_and_refusals_notify(tmp_path: Path, endpoint) -> None:  # noqa: F811
    url, received = endpoint
    rules_dir = tmp_path / "strategies"
    rules_dir.mkdir()
    spread_file = rules_dir / "spread.rules"
    spread_file.write_text(V1)
    loaded = load_ruleset([rules_dir])
    assert loaded.ruleset is not None
    holder = RulesetHolder(loaded.ruleset)
    notifier = Notifier([url], ["reload", "error"])
    printed: list[str] = []
    with HotReload([rules_dir], holder, tmp_path / "paper.db", notifier, echo=printed.append):
        spread_file.write_text(V2)
        wait_until(lambda: len(received) == 1, "the reload's notification")
        spread_file.write_text(BROKEN)
        wait_until(lambda: len(received) == 2, "the refusal's notification")
    reload_msg, refusal_msg = received
    assert reload_msg["title"] == "rulebook: ruleset reloaded"
    assert "changed: sol_spread" in reload_msg["message"]
    assert refusal_msg["title"] == "rulebook: error"
    assert refusal_msg["message"].startswith("reload refused, ruleset ")
    assert "unknown exchange 'binanse'" in refusal_msg["message"]
    assert holder.current().sha256 != loaded.ruleset.sha256  # V2 stays live


def test_after_a_restart_a_position_keeps_the_exit_clause_it_was_opened_with(
    tmp_path: Path,
) -> None:
    """Reload V2 -> V3 (a new exit clause) mid-run, stop, restart on V3: the
    position opened under V2 is given V2's rule back from the ledger's texts."""
    rules_dir = tmp_path / "strategies"
    rules_dir.mkdir()
    spread_file = rules_dir / "spread.rules"
    spread_file.write_text(V2)
    db = tmp_path / "paper.db"
    far = T0 + 100 * H

    def rows(n: int) -> list[dict]:  # spread 0.03% for c0..c2, -0.01% from c3
        out = []
        for k in range(n):
            rate = 0.0004 if k < 3 else 0.0
            out += pair_rows(T0 + k * H, "SOL", (100.0, 0.0001), (100.1, rate), far)
        return out

    first = load_ruleset([rules_dir]).ruleset
    assert first is not None
    holder = RulesetHolder(first)
    runtime = paper_runtime(holder, TradingConfig(), Ledger(db), source="replay")
    printed: list[str] = []

    def pace(prev: int | None, at: int) -> None:
        if at == T0 + H:  # the position opened at c0 under V2
            save_atomically(spread_file, V3_CHANGED)
            wait_until(lambda: any(" live " in p for p in printed), "the reload")

    with HotReload([rules_dir], holder, db, echo=printed.append):
        runtime.run(ReplaySource(write_jsonl(tmp_path / "a.jsonl", rows(3))), pace=pace)
    runtime.ledger.close()
    assert [r["status"] for r in sql(Ledger(db), "select status from positions")] == ["open"]

    # a new process: the files now say V3, whose exit clause (held > 100h) would not close
    restarted_rs = load_ruleset([rules_dir]).ruleset
    assert restarted_rs is not None and "held > 100h" in restarted_rs.sources[str(spread_file)]
    restarted = paper_runtime(RulesetHolder(restarted_rs), TradingConfig(), Ledger(db), source="replay")
    summary = restarted.run(ReplaySource(write_jsonl(tmp_path / "b.jsonl", rows(4))))
    assert summary.skipped_cycles == 3 and summary.cycles == 1
    (pos,) = sql(restarted.ledger, "select * from positions")
    assert pos["closed_at"] == T0 + 3 * H
    assert pos["close_reason"] == "exit when of rule sol_spread"


def test_rulebook_run_reloads_on_save(tmp_path: Path) -> None:
    """The command itself: `rulebook run --replay` paced to ~4 s, edited while it runs."""
    import queue
    import subprocess
    import sys
    import threading

    rules_dir = tmp_path / "strategies"
    rules_dir.mkdir()
    spread_file = rules_dir / "spread.rules"
    spread_file.write_text(V1)
    far = T0 + 100 * H
    rows = [
        r
        for k in range(40)
        for r in pair_rows(T0 + k * H, "SOL", (100.0, 0.0001), (100.1, 0.0004), far)
    ]
    rec = write_jsonl(tmp_path / "rec.jsonl", rows)
    db = tmp_path / "paper.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rulebook.cli",
            "run",
            str(rules_dir),
            "--paper",
            "--replay",
            str(rec),
            "--speed",
            "36000",
            "--db",
            str(db),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 10
        while not any(text in s for s in seen):
            assert time.monotonic() < deadline, f"never printed {text!r}: {''.join(seen)}"
            try:
                seen.append(lines.get(timeout=0.05))
            except queue.Empty:
                pass

    try:
        wait_for("reloading rules on save")
        save_atomically(spread_file, BROKEN)
        wait_for("reload refused")
        save_atomically(spread_file, V2)
        wait_for(" live (")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    while not lines.empty():
        seen.append(lines.get())
    out = "".join(seen)
    assert "error[E102]: unknown exchange 'binanse'" in out
    assert "changed: sol_spread" in out

    led = Ledger(db)
    shas = [c["ruleset_sha"] for c in sql(led, "select ruleset_sha from cycles order by ts")]
    assert len(shas) == 40
    switch = next(i for i, s in enumerate(shas) if s != shas[0])
    assert 0 < switch < 40 and set(shas[switch:]) == {shas[switch]}  # one switch, mid-run
    (pos,) = sql(led, "select opened_at from positions")
    assert pos["opened_at"] == T0 + switch * H  # V2's threshold, from its first cycle
    kinds = [
        e["kind"]
        for e in sql(led, "select kind from events where kind like 'reload%' order by id")
    ]
    assert kinds == ["reload_failed", "reload"]
