"""Settlement records (spec 9): the model, the reader, the recorder and replay."""

from __future__ import annotations

import json

import msgspec
import pytest
from msgspec import ValidationError

from rulebook.market import (
    JsonlRecorder,
    Observation,
    ReplaySource,
    Settlement,
    SnapshotView,
    read_jsonl,
    read_settlements,
)

H = 3_600_000
S0 = 1753113600000  # a settlement time (spec 9's example)


def perp(ts, rate=0.0001, nxt=S0, mark=182.31):
    return Observation.checked(
        ts=ts,
        exchange="binance",
        coin="SOL",
        market="perp",
        funding_rate=rate,
        funding_interval_h=8,
        next_funding_ts=nxt,
        mark=mark,
    )


def test_the_spec_example_line_is_a_settlement():
    line = (
        '{"ts": 1753113600000, "exchange": "binance", "coin": "SOL", "market": "settlement",'
        ' "funding_rate": 0.000093, "funding_interval_h": 8, "mark": 182.40}'
    )
    s = msgspec.json.decode(line, type=Settlement)
    assert (s.ts, s.exchange, s.coin, s.funding_rate, s.funding_interval_h, s.mark) == (
        S0,
        "binance",
        "SOL",
        0.000093,
        8.0,
        182.40,
    )
    assert json.loads(s.to_json()) == json.loads(line)


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"funding_rate": 0.2}, "outside +-10%"),
        ({"funding_rate": None}, "funding_rate"),
        ({"funding_interval_h": 0.001}, "between 1 minute and 24 hours"),
        ({"funding_interval_h": 25}, "between 1 minute and 24 hours"),
        ({"mark": 0}, "finite and positive"),
        ({"mark": -3.0}, "finite and positive"),
        ({"ts": 1753113600}, "seconds?"),
        ({"exchange": "binanse"}, "unknown exchange"),
        ({"bid": 1.0}, "bid do(es) not belong to a settlement record"),
        ({"next_funding_ts": S0}, "next_funding_ts"),
    ],
)
def test_values_are_checked(bad, words):
    data = {
        "ts": S0,
        "exchange": "binance",
        "coin": "SOL",
        "market": "settlement",
        "funding_rate": 0.0001,
        "funding_interval_h": 8,
        "mark": 182.4,
        **bad,
    }
    with pytest.raises(
        ValidationError,
        match=words.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?").replace("+", r"\+"),
    ):
        Settlement.checked(**data)


def test_interval_and_mark_are_optional():
    s = Settlement.checked(ts=S0, exchange="backpack", coin="ETH", funding_rate=6.196e-06)
    assert s.funding_interval_h is None and s.mark is None
    assert json.loads(s.to_json()) == {
        "ts": S0,
        "exchange": "backpack",
        "coin": "ETH",
        "market": "settlement",
        "funding_rate": 6.196e-06,
    }


def _write(tmp_path, lines):
    p = tmp_path / "rec.jsonl"
    p.write_text("".join((x if isinstance(x, str) else x.to_json()) + "\n" for x in lines))
    return p


def test_read_jsonl_leaves_settlements_out_and_read_settlements_has_them(tmp_path):
    st = Settlement.checked(
        ts=S0,
        exchange="binance",
        coin="SOL",
        funding_rate=0.000093,
        funding_interval_h=8,
        mark=182.4,
    )
    bad = json.dumps(
        {
            "ts": S0,
            "exchange": "binance",
            "coin": "SOL",
            "market": "settlement",
            "funding_rate": 0.5,
        }
    )
    p = _write(tmp_path, [perp(S0 - 60_000), st, bad, perp(S0 + 8 * H - 60_000)])
    obs, errors = read_jsonl(p)
    assert [o.market for o in obs] == ["perp", "perp"]
    assert [(e.line, e.severity) for e in errors] == [(3, "error")]
    assert "funding_rate" in errors[0].message
    got, errors2 = read_settlements(p)
    assert got == [st] and len(errors2) == 1


def test_a_settlement_makes_no_cycle_and_rides_on_the_first_view_at_or_after_it(tmp_path):
    st = Settlement.checked(
        ts=S0,
        exchange="binance",
        coin="SOL",
        funding_rate=0.000093,
        funding_interval_h=8,
        mark=182.4,
    )
    p = _write(tmp_path, [perp(S0 - 60_000), st, perp(S0 + 8 * H - 60_000, nxt=S0 + 8 * H)])
    src = ReplaySource(p)
    views = list(src)
    assert [v.at for v in views] == [S0 - 60_000, S0 + 8 * H - 60_000]
    assert views[0].settlements == ()
    assert views[1].settlements == (st,)
    assert src.errors == []
    # rules see observations only: no view holds the record as an observation
    for v in views:
        assert all(isinstance(o, Observation) for o in v.observations())
        assert v.get("binance", "SOL", "settlement") is None


def test_a_record_written_late_is_not_out_of_order_and_arrives_where_it_was_read(tmp_path):
    # `rulebook snapshot` writes the record after the cycle that found it in the
    # exchange's history, so it follows observations newer than itself.
    st = Settlement.checked(ts=S0, exchange="binance", coin="SOL", funding_rate=0.000093)
    p = _write(
        tmp_path,
        [
            perp(S0 - 30_000),
            perp(S0 + 30_000, nxt=S0 + 8 * H),
            st,
            perp(S0 + 60_000, nxt=S0 + 8 * H),
        ],
    )
    src = ReplaySource(p)
    views = list(src)
    assert [v.settlements for v in views] == [(), (st,), ()]
    assert src.errors == []


def test_records_after_the_last_observation_reach_the_last_view(tmp_path):
    st = Settlement.checked(ts=S0 - 60_000, exchange="binance", coin="SOL", funding_rate=0.0001)
    p = _write(tmp_path, [perp(S0 - 60_000), st])
    assert [v.settlements for v in ReplaySource(p)] == [(st,)]


def test_recorder_writes_settlements(tmp_path):
    p = tmp_path / "out.jsonl"
    st = Settlement.checked(ts=S0, exchange="binance", coin="SOL", funding_rate=0.000093, mark=182.4)
    with JsonlRecorder(p) as rec:
        rec.write([perp(S0 + 30_000, nxt=S0 + 8 * H)])
        rec.write([st])
    assert read_settlements(p)[0] == [st]
    assert [json.loads(x)["market"] for x in p.read_text().splitlines()] == ["perp", "settlement"]


def test_a_view_built_by_hand_has_no_settlements():
    assert SnapshotView.from_observations([perp(S0)]).settlements == ()


def test_a_gzipped_recording_reads_like_a_plain_one(tmp_path):
    import gzip

    st = Settlement.checked(ts=S0, exchange="binance", coin="SOL", funding_rate=0.000093)
    lines = "".join(x.to_json() + "\n" for x in [perp(S0 - 60_000), st, perp(S0 + 60_000)])
    plain = tmp_path / "rec.jsonl"
    plain.write_text(lines)
    packed = tmp_path / "rec.jsonl.gz"
    packed.write_bytes(gzip.compress(lines.encode()))
    assert [(v.at, v.settlements) for v in ReplaySource(packed)] == [
        (v.at, v.settlements) for v in ReplaySource(plain)
    ]
    assert read_settlements(packed)[0] == [st]
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(lines.encode())[:-12])
    obs, errors = read_jsonl(truncated)
    assert errors and "cannot read file" in errors[-1].message
