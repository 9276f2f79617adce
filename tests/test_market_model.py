from __future__ import annotations

import json

import pytest
from msgspec import ValidationError
from msgspec import json as msgspec_json

from rulebook.market import Observation, SnapshotView, read_jsonl
from rulebook.market._model import AnyObservation

T0 = 1753112400000


def perp(**kw):
    base = dict(
        ts=T0,
        exchange="binance",
        coin="SOL",
        market="perp",
        symbol="SOL/USDT:USDT",
        funding_rate=0.0001,
        funding_interval_h=8,
        next_funding_ts=T0 + 1_200_000,
        mark=182.31,
        index=182.25,
        bid=182.30,
        ask=182.32,
        volume_24h=1.2e9,
        taker_fee=0.0005,
    )
    base.update(kw)
    return Observation.checked(**base)


def spot(**kw):
    base = dict(
        ts=T0,
        exchange="binance",
        coin="SOL",
        market="spot",
        symbol="SOL/USDT",
        bid=182.20,
        ask=182.22,
        volume_24h=3.1e8,
        taker_fee=0.001,
    )
    base.update(kw)
    return Observation.checked(**base)


def test_spec_example_lines_parse():
    lines = [
        '{"ts": 1753112400000, "exchange": "binance", "coin": "SOL", "market": "perp", "symbol": "SOL/USDT:USDT", "funding_rate": 0.0001, "funding_interval_h": 8, "next_funding_ts": 1753113600000, "mark": 182.31, "index": 182.25, "bid": 182.30, "ask": 182.32, "volume_24h": 1.2e9, "taker_fee": 0.0005}',
        '{"ts": 1753112400000, "exchange": "binance", "coin": "SOL", "market": "spot", "symbol": "SOL/USDT", "bid": 182.20, "ask": 182.22, "volume_24h": 3.1e8, "taker_fee": 0.001}',
        '{"ts": 1753112400000, "exchange": "binance", "coin": "SOL", "market": "borrow", "borrow_rate_daily": 0.0002}',
    ]
    obs = [msgspec_json.decode(x, type=AnyObservation) for x in lines]
    assert [o.market for o in obs] == ["perp", "spot", "borrow"]
    # round trip without nulls
    assert msgspec_json.decode(obs[2].to_json(), type=AnyObservation) == obs[2]
    assert "null" not in obs[1].to_json()


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(exchange="binanse"), "unknown exchange"),
        (dict(coin="sol"), "upper-case"),
        (dict(mark=0), "positive"),
        (dict(bid=-1.0), "positive"),
        (dict(bid=183.0, ask=182.0), "crossed"),
        (dict(ts=1753112400), "seconds"),
        (dict(funding_interval_h=0), "interval"),
        (dict(funding_rate=1.5), "fraction"),
        (dict(volume_24h=-3), "negative"),
        (dict(borrow_rate_daily=0.001), "borrow observation"),
        (dict(mark=float("nan")), "finite"),
    ],
)
def test_invalid_perp_rejected_with_clear_message(kw, fragment):
    with pytest.raises(ValidationError) as e:
        perp(**kw)
    assert fragment in str(e.value)


def test_spot_cannot_carry_funding_and_borrow_needs_rate():
    with pytest.raises(ValidationError, match="belongs to a perp"):
        spot(funding_rate=0.0001)
    with pytest.raises(ValidationError, match="needs borrow_rate_daily"):
        Observation.checked(ts=T0, exchange="okx", coin="SOL", market="borrow")


def test_unknown_keys_are_ignored_when_read_and_refused_when_built(tmp_path):
    # A recording's unknown key is a newer writer's field: the reader ignores it
    # (and warns once per file); a keyword that is no field is a programming error.
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps({**json.loads(perp().to_json()), "open_interest": 5}) + "\n")
    got, errors = read_jsonl(p)
    assert got == [perp()] and not hasattr(got[0], "open_interest")
    assert [e.severity for e in errors] == ["warning"]
    with pytest.raises(TypeError, match="open_interest"):
        perp(open_interest=5)


def test_view_figures_normalise_by_each_observations_interval():
    obs = [
        perp(),
        spot(),
        # Backpack pays hourly: 0.01% an hour is 0.08% per 8h (spec 5).
        perp(
            exchange="backpack", symbol="SOL/USDC:USDC", funding_rate=0.0001, funding_interval_h=1
        ),
        perp(exchange="bybit", funding_rate=0.0002, funding_interval_h=4),
        Observation.checked(ts=T0, exchange="bybit", coin="SOL", market="borrow", borrow_rate_daily=0.0003),
    ]
    v = SnapshotView.from_observations(obs)
    assert v.at == T0
    assert v.funding_8h("binance", "SOL") == pytest.approx(0.0001)
    assert v.funding_8h("backpack", "SOL") == pytest.approx(0.0008)
    assert v.funding_8h("bybit", "SOL") == pytest.approx(0.0004)
    assert v.spot_mid("binance", "SOL") == pytest.approx(182.21)
    assert v.basis("binance", "SOL") == pytest.approx((182.31 - 182.21) / 182.21)
    assert v.borrow_8h("bybit", "SOL") == pytest.approx(0.0001)
    assert v.next_funding_s("binance", "SOL") == pytest.approx(1200.0)
    assert v.age_s(v.perp("binance", "SOL")) == 0
    assert v.exchanges() == {"binance", "backpack", "bybit"}
    assert v.coins() == {"SOL"}
    assert v.basis("backpack", "SOL") is None  # no spot there
    assert v.funding_8h("okx", "SOL") is None


def test_view_at_takes_latest_at_or_before_t():
    obs = [
        perp(ts=T0, funding_rate=0.0001),
        perp(ts=T0 + 60_000, funding_rate=0.0002),
        perp(ts=T0 + 120_000, funding_rate=0.0003),
    ]
    v = SnapshotView.from_observations(obs, at=T0 + 90_000)
    assert v.perp("binance", "SOL").funding_rate == 0.0002
    assert v.age_s(v.perp("binance", "SOL")) == 30.0
    assert SnapshotView.from_observations(obs).perp("binance", "SOL").funding_rate == 0.0003
    assert SnapshotView.from_observations(obs, at=T0 - 1).perp("binance", "SOL") is None


def test_missing_reasons():
    obs = [
        perp(),
        perp(exchange="gate", coin="BTC", symbol="BTC/USDT:USDT"),
        perp(exchange="gate", coin="ETH", funding_rate=None),
        spot(exchange="gate", coin="BTC", bid=None, ask=None),
    ]
    v = SnapshotView.from_observations(obs, failures={"okx": "RequestTimeout after 3 tries"})
    assert v.missing_reason("gate", "SOL", "perp") == "SOL not listed on gate"
    assert v.missing_reason("gate", "ETH", "perp") == "no funding rate for ETH on gate"
    assert v.missing_reason("okx", "SOL", "borrow").startswith("no data from okx: RequestTimeout")
    assert v.missing_reason("binance", "SOL", "borrow") == "no borrow market for SOL on binance"
    assert v.missing_reason("gate", "BTC", "spot") == "no spot bid/ask for BTC on gate"
    assert v.missing_reason("binance", "SOL", "perp") == ""
