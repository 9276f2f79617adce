"""`rulebook run`'s plain options: quiet replays, --for, --fresh and the resume
note, --db, options that do not go together, empty replays, --version."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from trading_helpers import T0, H, T, pair_rows, write_jsonl
from typer.testing import CliRunner

from rulebook.cli import app

RULES = """
rule sol_spread:
    when spread(SOL, bybit, binance) > 0.01%
    then hedge 1000 USDT, alert "spread {edge}"
"""
runner = CliRunner()


@pytest.fixture
def endpoint():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"json://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.rules").write_text(RULES)
    rows = (pair_rows(T0, "SOL", (100.0, 0.0001), (100.2, 0.0004), T)
            + pair_rows(T, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * H)
            + pair_rows(T + H, "SOL", (101.0, 0.0001), (101.1, 0.0003), T + 8 * H))
    write_jsonl(tmp_path / "rec.jsonl", rows)
    return tmp_path


def run(*args: str):
    return runner.invoke(app, ["run", "s.rules", "--paper", "--no-watch", *args])


def stats(db: str = "p.db") -> dict:
    return json.loads(runner.invoke(app, ["status", "--db", db, "--json"]).stdout)["stats"]


def test_replays_are_quiet_unless_notify(setup, endpoint) -> None:
    url, received = endpoint
    (setup / "rulebook.toml").write_text(f'[notify]\nurls = ["{url}"]\n')
    res = run("--replay", "rec.jsonl", "--db", "p.db")
    assert res.exit_code == 0, res.output
    assert received == []
    assert "notifications off for a replay (--notify sends them)" in res.stderr
    res = run("--replay", "rec.jsonl", "--db", "q.db", "--notify")
    assert res.exit_code == 0, res.output
    # the alert action on each of the 3 cycles, and the opening at the first
    assert [m["title"] for m in received] == [
        "rulebook: alert", "rulebook: position opened", "rulebook: alert", "rulebook: alert"]


def test_for_stops_a_replay_after_that_much_recorded_time(setup) -> None:
    res = run("--replay", "rec.jsonl", "--db", "p.db", "--for", "1h")
    assert res.exit_code == 0, res.output
    assert stats()["cycles"] == 2  # T0 and T = T0 + 1h; T + 1h is past the hour
    assert "cycles 2 (" in res.stdout  # the statistics are printed


def test_resume_note_fresh_and_a_changed_ruleset(setup) -> None:
    assert run("--replay", "rec.jsonl", "--db", "p.db", "--for", "1h").exit_code == 0
    res = run("--replay", "rec.jsonl", "--db", "p.db")
    assert "resuming p.db: last cycle 2025-07-21 16:00 UTC, 1 open position(s); --fresh starts" \
        in " ".join(res.stderr.split())
    assert "differs from the last run's" not in res.stderr
    (setup / "s.rules").write_text(RULES.replace("0.01%", "0.02%"))
    res = run("--replay", "rec.jsonl", "--db", "p.db")
    assert "warning: the ruleset (" in res.stderr
    assert "differs from the last run's" in " ".join(res.stderr.split())
    res = run("--replay", "rec.jsonl", "--db", "p.db", "--fresh")
    assert res.exit_code == 0, res.output
    assert "fresh ledger p.db: the previous one is kept as p.db." in res.stderr
    assert "resuming" not in res.stderr
    kept = [p for p in setup.iterdir() if re.fullmatch(r"p\.db\.\d{8}T\d{6}", p.name)]
    assert len(kept) == 1 and stats(kept[0].name)["cycles"] == 3
    assert stats()["cycles"] == 3


def test_options_that_do_not_apply_and_bad_paths(setup) -> None:
    cases = [
        (["--replay", "rec.jsonl", "--every", "10s"],
         "error: --every sets the live cycle; a replay's cycles are the recording's"),
        (["--speed", "10"], "error: --speed paces a replay: give --replay FILE, or drop --speed"),
        (["--replay", "rec.jsonl", "--db", "/nonexistent/dir/x.db"],
         "error: --db /nonexistent/dir/x.db: the directory /nonexistent/dir does not exist"),
        (["--replay", "rec.jsonl", "--for", "soon"], "error: --for: "),
    ]
    for args, message in cases:
        res = run(*args)
        assert res.exit_code == 2, (args, res.output)
        assert res.output.startswith(message), res.output
    assert not (setup / "nonexistent").exists()


@pytest.mark.parametrize("content", ["", "\n\n", '{"ts": "nope"}\n'])
def test_an_empty_replay_is_an_error_like_dry_run(setup, content) -> None:
    (setup / "empty.jsonl").write_text(content)
    res = run("--replay", "empty.jsonl", "--db", "p.db")
    assert res.exit_code == 2
    assert res.output.strip() == "error: empty.jsonl: no valid observations; nothing to replay"
    assert not (setup / "p.db").exists()


def test_version() -> None:
    from importlib.metadata import version

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout == f"rulebook {version('rulebook')}\n"
