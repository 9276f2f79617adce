"""Reading the columnar format: the checks of docs/limits.md on every row (vectorised,
bad rows reported by row number and skipped), and the same cycles as the JSONL replay."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulebook.market import (
    ObservationColumns,
    ReplaySource,
    convert,
    iter_columns,
    iter_jsonl,
    iter_parquet,
    write_columnar,
)

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
EVERY_FIELD = Path(__file__).parent / "fixtures" / "columnar" / "every-field.jsonl"
T0 = 1719791940000
PERP = {"ts": T0, "exchange": "binance", "coin": "SOL", "market": "perp",
        "funding_rate": 0.0001, "funding_interval_h": 8.0, "mark": 150.0}  # fmt: skip


def _views_equal(a: list, b: list) -> None:
    assert [v.at for v in a] == [v.at for v in b]
    for x, y in zip(a, b, strict=True):
        assert x.observations() == y.observations()
        assert x.settlements == y.settlements
        assert x.recorded and y.recorded


def test_the_example_replays_to_the_same_views_from_parquet(tmp_path: Path) -> None:
    pqf = tmp_path / "example.parquet"
    convert(EXAMPLE, pqf)
    from_jsonl, from_parquet = ReplaySource(EXAMPLE), ReplaySource(pqf)
    a, b = list(from_jsonl), list(from_parquet)
    assert len(a) == 1642
    _views_equal(a, b)
    assert from_parquet.errors == [] and from_parquet.counts == {"error": 0, "warning": 0}
    # 9,852 records, 6 of them after the last observation: on no view, JSONL or Parquet
    assert sum(len(v.settlements) for v in b) == sum(len(v.settlements) for v in a) == 9846


def test_small_row_groups_give_the_same_views(tmp_path: Path) -> None:
    # cycles and settlement records that straddle row groups
    rows = [json.loads(ln) for ln in EXAMPLE.read_text().splitlines()[:3000]]
    small = tmp_path / "small.parquet"
    write_columnar(small, rows, row_group_rows=7)
    assert pq.ParquetFile(small).metadata.num_row_groups == math.ceil(3000 / 7)
    src = tmp_path / "part.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _views_equal(list(ReplaySource(src)), list(ReplaySource(small)))


def test_out_of_order_rows_and_repeated_keys_are_handled_as_in_jsonl(tmp_path: Path) -> None:
    def perp(ts: int, mark: float, coin: str = "SOL") -> dict:
        return {**PERP, "ts": ts, "mark": mark, "coin": coin}

    rows = [
        perp(T0, 100.0),
        perp(T0, 101.0),  # same time, same key: the later row wins
        perp(T0 + 60_000, 102.0),
        {"ts": T0, "exchange": "binance", "coin": "SOL", "market": "settlement",
         "funding_rate": 0.0001, "funding_interval_h": 8.0},  # late settlement: rides on
        perp(T0 + 30_000, 99.0),  # out of order, older than what SOL holds: not applied
        perp(T0 + 30_000, 50.0, "ETH"),  # out of order, new key: applied
        perp(T0 + 120_000, 103.0),
    ]  # fmt: skip
    src, pqf = tmp_path / "late.jsonl", tmp_path / "late.parquet"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_columnar(pqf, rows, row_group_rows=3)
    a_src, b_src = ReplaySource(src), ReplaySource(pqf)
    a, b = list(a_src), list(b_src)
    _views_equal(a, b)
    assert [str(e) for e in a_src.errors] == [
        str(e).replace("late.parquet", "late.jsonl") for e in b_src.errors
    ]
    assert len(b_src.errors) == 2 and b_src.counts["warning"] == 2
    # the late rows reach the view of the cycle they were read in (T0 + 1 min)
    assert [v.mark("binance", "SOL") for v in b] == [101.0, 102.0, 103.0]
    assert [v.mark("binance", "ETH") for v in b] == [None, 50.0, 50.0]
    assert [len(v.settlements) for v in b] == [0, 1, 0]


def _table(rows: list[dict]) -> object:
    """A Parquet table as a third-party writer might make it: plain columns, NaN allowed."""
    names = sorted({k for r in rows for k in r})
    return pa.table({k: [r.get(k) for r in rows] for k in names})


BAD = [
    ({"mark": float("nan")}, "mark: must be a finite number"),
    ({"mark": float("inf")}, "mark: must be a finite number"),
    ({"mark": -5.0}, "mark: price must be positive, got -5.0"),
    ({"mark": 2e12}, "mark: price 2000000000000.0 is outside 1e-12..1e+12"),
    ({"funding_rate": 0.2}, "funding_rate: funding rate 0.2 is outside +-10% per interval"),
    ({"funding_interval_h": 48.0}, "funding_interval_h: funding interval must be between"),
    ({"ts": 1719791940}, "ts: 1719791940 is not a millisecond timestamp (seconds?"),
    ({"exchange": "binanse"}, "exchange: unknown exchange 'binanse'"),
    ({"coin": "sol"}, "coin: coin 'sol' must be upper-case letters and digits"),
    ({"market": "futures"}, "market: Input should be 'perp', 'spot' or 'borrow'"),
    ({"market": "spot", "bid": 2.0, "ask": 1.0, "mark": None, "funding_rate": None,
      "funding_interval_h": None}, "crossed book: bid 2.0 > ask 1.0"),  # fmt: skip
    ({"market": "spot"}, "funding_rate belongs to a perp observation, not spot"),
    ({"volume_24h": -1.0}, "volume_24h: must not be negative, got -1.0"),
    ({"taker_fee": 0.05}, "taker_fee: taker fee 0.05 is not a fraction in [0, 0.05)"),
    ({"next_funding_ts": 17197919400000000}, "next_funding_ts: 17197919400000000 is not a milli"),
]


def test_bad_values_in_a_parquet_file_are_reported_by_row_and_skipped(tmp_path: Path) -> None:
    rows = [PERP]
    for change, _ in BAD:
        rows.append({**PERP, **change})
    rows.append({**PERP, "ts": T0 + 60_000})
    path = tmp_path / "bad.parquet"
    pq.write_table(_table(rows), path)
    got = list(iter_parquet(path))
    good = [n for n, r, _ in got if r is not None]
    assert good == [1, len(rows)]
    errors = [e for _, _, e in got if e is not None]
    assert [e.line for e in errors] == list(range(2, len(rows)))
    for e, (_, words) in zip(errors, BAD, strict=True):
        assert e.severity == "error" and words in e.message, (e, words)
    # the words of the same row as a JSON line (NaN and infinity cannot be one)
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n"
                             for r in rows[3:]))  # fmt: skip
    same = [e.message for _, _, e in iter_jsonl(jsonl) if e is not None]
    assert same == [e.message for e in errors[2:]]
    # the replay skips them too, and counts them
    source = ReplaySource(path)
    views = list(source)
    assert [v.at for v in views] == [T0, T0 + 60_000]
    assert source.counts["error"] == len(BAD)
    assert [e.line for e in source.errors] == list(range(2, len(rows)))


def test_a_settlement_row_with_perp_fields_is_rejected(tmp_path: Path) -> None:
    rows = [{"ts": T0, "exchange": "okx", "coin": "BTC", "market": "settlement",
             "funding_rate": 0.0001, "bid": 5.0}]  # fmt: skip
    path = tmp_path / "s.parquet"
    pq.write_table(_table(rows), path)
    [(n, rec, err)] = list(iter_parquet(path))
    assert rec is None and n == 1 and "bid do(es) not belong to a settlement record" in err.message


def test_a_file_without_the_key_columns_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    source = ReplaySource(path)
    assert list(source) == []
    assert [str(e) for e in source.errors] == [
        f"{path}:0: error: cannot read file: not a rulebook snapshot file: no 'ts' column"
    ]


def test_columns_per_cycle_follow_the_contract(tmp_path: Path) -> None:
    pqf = tmp_path / "every.parquet"
    convert(EVERY_FIELD, pqf)
    cycles = list(iter_columns(pqf))
    assert [c.at for c in cycles] == [T0, T0 + 60_000, T0 + 3_600_000]
    last = cycles[-1]
    assert isinstance(last, ObservationColumns) and len(last) == 9  # one row per market
    assert last.exchange.dtype == np.int16 and last.coin.dtype == np.int32
    assert last.market.dtype == np.int8 and last.ts.dtype == np.int64
    assert last.markets == ("perp", "spot", "borrow")
    keys = [(last.exchanges[e], last.coins[c], last.markets[m])
            for e, c, m in zip(last.exchange, last.coin, last.market, strict=True)]  # fmt: skip
    view = list(ReplaySource(EVERY_FIELD))[-1]
    assert keys == [o.key for o in view.observations()]  # the order keys first appeared
    i = keys.index(("bybit", "SOL", "perp"))
    assert math.isnan(last.index[i]) and math.isnan(last.next_funding_ts[i])
    assert last.symbol[i] == -1 and last.funding_rate[i] == -0.0003
    assert [len(c.settlements) for c in cycles] == [0, 2, 0]
    with pytest.raises(AttributeError):
        last.at = 0  # type: ignore[misc]


# Any row the model accepts, the vectorised checks accept, and the other way round.
_num = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64),
                 st.sampled_from([0.0, 1e-12, 1e12, 0.1, -0.1, 0.05, 1.0, 24.0, 1 / 60]))  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    market=st.sampled_from(["perp", "spot", "borrow", "settlement"]),
    values=st.fixed_dictionaries({k: _num for k in (
        "funding_rate", "funding_interval_h", "mark", "index", "bid", "ask", "volume_24h",
        "taker_fee", "borrow_rate_daily")}),  # fmt: skip
    next_ts=st.one_of(st.none(), st.sampled_from([T0, 10, 10**14])),
)
def test_the_vectorised_checks_agree_with_the_model(market, values, next_ts) -> None:
    import tempfile

    row = {"ts": T0, "exchange": "gate", "coin": "ETH", "market": market, **values,
           "next_funding_ts": next_ts}  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "one.parquet"
        cols = {k: [v] for k, v in row.items()}
        schema = pa.schema([(k, pa.float64()) if k in values else
                            (k, pa.int64()) if k in ("ts", "next_funding_ts") else
                            (k, pa.string()) for k in row])  # fmt: skip
        pq.write_table(pa.table(cols, schema=schema), path)
        [(_, from_parquet, _)] = list(iter_parquet(path))
        jsonl = Path(d) / "one.jsonl"
        finite = {k: v for k, v in row.items() if v is not None}
        if all(not isinstance(v, float) or math.isfinite(v) for v in finite.values()):
            jsonl.write_text(json.dumps(finite) + "\n")
            [(_, from_jsonl, _)] = [x for x in iter_jsonl(jsonl)]
            assert from_parquet == from_jsonl
        else:
            assert from_parquet is None  # NaN or inf: never a value
