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


PREVIOUS = EXAMPLE.with_name("binance-bybit-okx-btc-eth-2023-2024-previous.jsonl.gz")


def _shown_and_settled(path):
    from rulebook.market import Observation, Settlement, iter_jsonl

    shown, settled = {}, {}
    for _, rec, err in iter_jsonl(path):
        assert err is None
        if isinstance(rec, Settlement):
            settled[(rec.exchange, rec.coin, rec.ts)] = rec
        elif isinstance(rec, Observation) and rec.market == "perp":
            shown[(rec.exchange, rec.coin, rec.next_funding_ts)] = rec
    return shown, settled


def test_both_variants_settle_the_same_true_rates_and_show_what_the_readme_says():
    shown_a, settled_a = _shown_and_settled(EXAMPLE)
    shown_b, settled_b = _shown_and_settled(PREVIOUS)
    assert settled_a == settled_b and len(settled_a) == 9852
    for (ex, coin, s), rec in settled_a.items():
        assert rec.funding_interval_h == 8 and (rec.ts % H8) == 0
        # the mark at settlement is the perp mark the observation a minute before shows
        assert rec.mark == shown_a[(ex, coin, s)].mark
        # default variant: a minute before s it shows the rate that then settles
        assert shown_a[(ex, coin, s)].funding_rate == rec.funding_rate
        # previous variant: it shows the rate settled 8h before (none for the first)
        before = settled_a.get((ex, coin, s - H8))
        assert shown_b[(ex, coin, s)].funding_rate == (before and before.funding_rate)
    # Bybit ETH, 2024-03-05 16:00 UTC (the example): mark at settlement 3738.74
    assert settled_a[("bybit", "ETH", 1709654400000)].mark == 3738.74
