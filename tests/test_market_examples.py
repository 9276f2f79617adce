from __future__ import annotations

from pathlib import Path

import pytest

from rulebook.market import ReplaySource

EXAMPLE = Path(__file__).parents[1] / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
H8 = 8 * 3600 * 1000


def test_example_recording_replays_in_time_order_on_the_utc_grid():
    src = ReplaySource(EXAMPLE)
    ats = []
    for v in src:
        ats.append(v.at)
        # one minute before a UTC 00/08/16 settlement, whatever London's clock said
        assert (v.at + 60_000) % H8 == 0
    assert src.errors == []
    assert ats == sorted(ats) and len(set(ats)) == len(ats) == 1642
    assert ats[0] == 1672531140000  # 2022-12-31 23:59 UTC, before the 2023-01-01 00:00 settlement


def test_example_snapshot_figures():
    views = iter(ReplaySource(EXAMPLE))
    v = next(views)
    assert v.exchanges() == {"binance", "bybit", "okx"} and v.coins() == {"BTC", "ETH"}
    assert v.funding_8h("binance", "BTC") == pytest.approx(0.0001)
    assert v.next_funding_s("binance", "BTC") == 60.0
    assert v.basis("binance", "BTC") == pytest.approx((16537.5 - 16541.77) / 16541.77)
