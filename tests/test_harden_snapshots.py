"""Issue 14: snapshot values checked, not trusted; snapshot files streamed and bounded.

Each attack of the issue that concerns a snapshot line is repeated here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.market import Observation, ReplaySource, iter_jsonl, read_jsonl

T0 = 1753112400000
PERP = {
    "ts": T0, "exchange": "binance", "coin": "SOL", "market": "perp",
    "funding_rate": 0.0001, "funding_interval_h": 8, "next_funding_ts": T0 + 1_200_000,
    "mark": 182.31, "index": 182.25, "bid": 182.30, "ask": 182.32,
}  # fmt: skip
SPOT = {"ts": T0, "exchange": "binance", "coin": "SOL", "market": "spot", "bid": 182.2, "ask": 182.22}


def problem(**fields: object) -> str:
    """The error message of one perp line with `fields` changed ('' when it is valid)."""
    path_errors = [e for e in _read_one({**PERP, **fields}) if e.severity == "error"]
    return path_errors[0].message if path_errors else ""


def _read_one(line: dict[str, object]):
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        fh.write(json.dumps(line) + "\n")
    _, errors = read_jsonl(fh.name)
    Path(fh.name).unlink()
    return errors


# -- values (issue 14, attacks 2 and 8) ---------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("mark", True, "expected a number, got a boolean"),  # attack 8: true is not 1.0
        ("mark", "100.5", "expected a number, got a string"),  # attack 8: no coercion
        ("bid", [1], "expected a number, got an array"),
        ("mark", {"v": 1}, "expected a number, got an object"),
        ("mark", 1e300, "outside"),  # attack 2: a spot or mark price of 1e300
        ("mark", 1.7e308, "outside"),  # attack 2: the equity would be inf
        ("mark", 10**400, "too large"),
        ("mark", 0, "positive"),
        ("mark", -5, "positive"),
        ("funding_interval_h", 1e-300, "between 1 minute and 24 hours"),  # attack 2
        ("funding_interval_h", 0.01, "between 1 minute and 24 hours"),
        ("funding_interval_h", 25, "between 1 minute and 24 hours"),
        ("funding_rate", 0.11, "+-10%"),
        ("funding_rate", -0.5, "+-10%"),
        ("ts", True, "expected an integer"),
        ("ts", "1753112400000", "expected an integer"),
        ("ts", 1753112400000.5, "expected an integer"),
        ("coin", 5, "expected a string"),
        ("exchange", None, "expected a string"),
        ("volume_24h", 1e300, "beyond"),
    ],
)
def test_a_bad_value_makes_its_line_invalid(field: str, value: object, words: str):
    assert words in problem(**{field: value})


def test_good_values_at_the_edges_are_accepted():
    assert problem(funding_interval_h=1 / 60) == ""
    assert problem(funding_interval_h=24) == ""
    assert problem(funding_rate=0.1) == ""
    assert problem(funding_rate=-0.1) == ""
    assert problem(mark=0.000001, index=0.000001, bid=0.000001, ask=0.000001) == ""
    assert problem(ts=float(T0)) == ""  # an integral float is an integer


def test_a_spot_line_of_1e300_is_skipped_not_traded(tmp_path: Path):
    p = tmp_path / "s.jsonl"
    lines = [PERP, SPOT, {**SPOT, "ts": T0 + 60_000, "bid": 1e300, "ask": 1e300}]
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    got, errors = read_jsonl(p)
    assert len(got) == 2
    assert [e.line for e in errors] == [3]


# -- the reader: each bad line skipped with its number, whatever it holds (attack 4) ---


def _file(tmp_path: Path, *raw: bytes) -> Path:
    p = tmp_path / "snap.jsonl"
    p.write_bytes(b"".join(r + b"\n" for r in raw))
    return p


GOOD = json.dumps(PERP).encode()


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"ts": 1' + b"0" * 5000, "not valid JSON"),  # attack 4: 5,000 digits
        (b'{"ts": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b"[" * 100_000, "longer than"),  # attack 4: 100,000 [ (over the line limit)
        (b"[" * 60_000, "nested too deeply"),  # under the line limit: the parser's depth
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "nested too deeply"),
        (b'{"ts": NaN}', "not valid JSON"),
        (b'{"ts": Infinity}', "not valid JSON"),
        (b"\x00\x00\x00", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'"just a string"', "expected a JSON object"),
        (b"x" * 200_000, "longer than"),
    ],
)
def test_a_hostile_line_is_skipped_and_the_file_goes_on(tmp_path: Path, raw: bytes, words: str):
    p = _file(tmp_path, GOOD, raw, GOOD)
    got, errors = read_jsonl(p)
    assert len(got) == 2
    assert [e.line for e in errors] == [2]
    assert words in errors[0].message
    assert len(str(errors[0])) < 300  # never the line itself echoed whole


def test_a_line_without_newline_at_the_end_of_the_file_is_read(tmp_path: Path):
    p = tmp_path / "s.jsonl"
    p.write_bytes(GOOD + b"\n" + GOOD)
    assert len(read_jsonl(p)[0]) == 2


def test_a_line_exactly_at_the_limit_is_read_one_byte_more_is_not(tmp_path: Path):
    pad = 64 * 1024 - len(GOOD)
    exact = GOOD[:-1] + b', "x": "' + b"y" * (pad - 9) + b'"}'
    assert len(exact) == 64 * 1024
    p = _file(tmp_path, exact, exact[:-2] + b'y"}', GOOD)
    got = list(iter_jsonl(p))
    kinds = [(n, o is not None, e.message if e else None) for n, o, e in got]
    assert kinds[1][:2] == (1, True)  # the warning for "x" comes first, then the line
    assert kinds[2][0] == 2 and "longer than 65,536" in (kinds[2][2] or "")
    assert kinds[3][:2] == (3, True)


def test_unknown_keys_and_out_of_order_lines_are_reported(tmp_path: Path):
    # attack 8: "out-of-order lines and unknown keys never reported"
    late = {**PERP, "ts": T0 + 60_000}
    p = _file(
        tmp_path,
        json.dumps(late).encode(),
        json.dumps({**PERP, "colour": "red"}).encode(),
    )
    replay = ReplaySource(p)
    views = list(replay)
    assert len(views) == 1
    messages = [str(e) for e in replay.errors]
    assert any("unknown field 'colour'" in m for m in messages)
    assert any("out of time order" in m and ":2:" in m for m in messages)


def test_an_unknown_key_of_50_kb_is_reported_cut(tmp_path: Path):
    p = _file(tmp_path, json.dumps({**PERP, "\x1b[2J" + "k" * 50_000: 1}).encode())
    _, errors = read_jsonl(p)
    assert len(str(errors[0])) < 200
    assert "\x1b" not in str(errors[0])


# -- dry-run and run on hostile files: no traceback (attack 4) ------------------------

RULES = "when funding(SOL, binance) > 0.001% then hedge 1000 USDT\n"


@pytest.mark.parametrize("raw", [b'{"ts": 1' + b"0" * 5000, b"[" * 100_000, b"[" * 60_000])
def test_dry_run_and_run_skip_a_hostile_line(tmp_path: Path, raw: bytes):
    rules = tmp_path / "r.rules"
    rules.write_text(RULES)
    snap = _file(tmp_path, json.dumps(PERP).encode(), json.dumps(SPOT).encode(), raw)
    runner = CliRunner()
    res = runner.invoke(app, ["dry-run", str(rules), "--snapshot", str(snap), "--json"])
    assert res.exit_code == 0, res.output
    assert res.exception is None
    out = json.loads(res.stdout)
    assert out["opportunities"][0]["decision"] == "open"
    assert ":3:" in res.stderr
    db = tmp_path / "p.db"
    res = runner.invoke(
        app,
        ["run", str(rules), "--paper", "--replay", str(snap), "--db", str(db), "--no-watch"],
    )
    assert res.exit_code == 0, res.output
    assert res.exception is None
    assert "1 invalid line(s)" in res.stderr


# -- huge inputs under a memory bound (attack 5) ---------------------------------------

_BOUNDED = r"""
import resource, sys
from rulebook.market import read_jsonl, ReplaySource
from rulebook.app import snapshot_from_file
# the address space now, plus 150 MB: a file read whole would not fit
with open("/proc/self/status") as fh:
    vm = next(int(l.split()[1]) for l in fh if l.startswith("VmSize:")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 150 * 2**20, vm + 150 * 2**20))
path = sys.argv[1]
obs, errors = read_jsonl(path)
replay = ReplaySource(path)
views = list(replay)
snap = snapshot_from_file(path)
print(len(obs), len(errors), len(views), len(replay.errors), len(snap.view), errors[0].line)
"""


def test_a_sparse_gigabyte_and_deep_nesting_are_read_in_bounded_memory(tmp_path: Path):
    p = tmp_path / "huge.jsonl"
    with open(p, "wb") as fh:
        fh.write(GOOD + b"\n")
        fh.write(b"[" * 60_000 + b"\n")  # deep nesting inside the line limit
        fh.seek(1024**3, 1)  # a sparse gigabyte of NUL bytes: one "line" without newline
        fh.write(b"\n" + GOOD + b"\n")
    res = subprocess.run(
        [sys.executable, "-c", _BOUNDED, str(p)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["2", "2", "1", "2", "1", "2"]


def test_the_observation_model_never_holds_a_non_finite_number():
    for field in ("mark", "index", "bid", "ask", "volume_24h", "funding_rate"):
        for bad in (float("nan"), float("inf"), -float("inf")):
            with pytest.raises(ValueError):
                Observation.checked(**{**PERP, field: bad})


def test_dry_run_and_run_report_unknown_keys_and_out_of_order_lines(tmp_path: Path):
    # attack 8: "out-of-order lines and unknown keys never reported"
    rules = tmp_path / "r.rules"
    rules.write_text(RULES)
    late = {**PERP, "ts": T0 + 60_000}
    snap = _file(
        tmp_path,
        json.dumps(late).encode(),
        json.dumps({**SPOT, "colour": "red"}).encode(),  # unknown key
        json.dumps(PERP).encode(),  # older than the line before: out of time order
    )
    runner = CliRunner()
    res = runner.invoke(app, ["dry-run", str(rules), "--snapshot", str(snap), "--json"])
    assert res.exit_code == 0, res.output
    assert "unknown field 'colour'" in res.stderr
    assert f"{snap}:2:" in res.stderr
    assert "out of time order" in res.stderr
    res = runner.invoke(
        app,
        ["run", str(rules), "--paper", "--replay", str(snap), "--db", str(tmp_path / "p.db"),
         "--no-watch"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "3 line warning(s)" in res.stderr and "unknown field 'colour'" in res.stderr


def test_a_replay_keeps_a_bounded_number_of_problems_and_counts_them_all(tmp_path: Path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b"{not json\n" * 5000 + GOOD + b"\n")
    replay = ReplaySource(p)
    assert len(list(replay)) == 1
    assert replay.counts["error"] == 5000
    assert len(replay.errors) == ReplaySource.KEPT
