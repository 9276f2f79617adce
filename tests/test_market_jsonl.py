from __future__ import annotations

import json

from rulebook.market import JsonlRecorder, Observation, ReplaySource, read_jsonl

T0 = 1753112400000


def obs(ts, ex="binance", coin="BTC", rate=0.0001):
    return Observation.checked(
        ts=ts,
        exchange=ex,
        coin=coin,
        market="perp",
        funding_rate=rate,
        funding_interval_h=8,
        mark=100.0,
        index=100.0,
    )


def test_read_jsonl_reports_bad_lines_and_keeps_going(tmp_path):
    p = tmp_path / "snap.jsonl"
    good = obs(T0).to_json()
    p.write_bytes(
        "\n".join(
            [
                good,
                "{not json",
                "[1, 2]",
                json.dumps({"ts": T0, "exchange": "binanse", "coin": "BTC", "market": "perp"}),
                "",
                json.dumps({**json.loads(good), "extra_thing": 1}),
                json.dumps({**json.loads(good), "extra_thing": 2}),
            ]
        ).encode()
        + b"\n\xff\xfe garbage\n"
        + good.encode()
        + b"\n"
    )
    got, errors = read_jsonl(p)
    assert len(got) == 4
    by_line = {e.line: e for e in errors}
    assert "not valid JSON" in by_line[2].message
    assert "expected a JSON object" in by_line[3].message
    assert "unknown exchange 'binanse'" in by_line[4].message and "exchange" in by_line[4].message
    assert by_line[6].severity == "warning" and "extra_thing" in by_line[6].message
    assert 7 not in by_line  # the unknown key is reported once per file
    assert "not valid JSON" in by_line[8].message
    assert str(by_line[2]).startswith(f"{p}:2: error:")


def test_read_jsonl_missing_file_is_an_error_not_a_crash(tmp_path):
    got, errors = read_jsonl(tmp_path / "nope.jsonl")
    assert got == [] and "cannot read file" in errors[0].message


def test_recorder_appends_and_replay_yields_views_in_time_order(tmp_path):
    p = tmp_path / "rec.jsonl"
    with JsonlRecorder(p) as rec:
        rec.write([obs(T0 + 60_000, "bybit"), obs(T0)])
    with JsonlRecorder(p) as rec:
        rec.write([obs(T0 + 120_000, rate=0.0003)])
    lines = p.read_text().splitlines()
    assert [json.loads(x)["ts"] for x in lines] == [T0, T0 + 60_000, T0 + 120_000]

    src = ReplaySource(p)
    views = list(src)
    assert [v.at for v in views] == [T0, T0 + 60_000, T0 + 120_000]
    assert views[0].exchanges() == {"binance"}
    assert views[1].exchanges() == {"binance", "bybit"}
    # each view keeps its own state after the replay moved on
    assert views[1].perp("binance", "BTC").funding_rate == 0.0001
    assert views[2].perp("binance", "BTC").funding_rate == 0.0003
    assert views[2].age_s(views[2].perp("bybit", "BTC")) == 60.0
    assert src.errors == []


def test_replay_out_of_order_line_is_reported_and_does_not_clobber(tmp_path):
    p = tmp_path / "rec.jsonl"
    p.write_text(
        "\n".join(
            [
                obs(T0).to_json(),
                obs(T0 + 60_000, rate=0.0002).to_json(),
                obs(T0 + 30_000, rate=0.0009).to_json(),  # late, older than what binance holds
                obs(T0 + 30_000, "okx", rate=0.0005).to_json(),  # late, but new key
                "oops",
                obs(T0 + 90_000, "bybit").to_json(),
            ]
        )
        + "\n"
    )
    src = ReplaySource(p)
    views = list(src)
    assert [v.at for v in views] == [T0, T0 + 60_000, T0 + 90_000]
    assert views[-1].perp("binance", "BTC").funding_rate == 0.0002
    assert views[-1].perp("okx", "BTC").funding_rate == 0.0005
    assert [e.line for e in src.errors] == [3, 4, 5]
    assert src.errors[0].severity == "warning" and "out of time order" in src.errors[0].message
