"""The paper executor's open and close read what they need without the general path's
extra work, and get what it gets:

- the fills read their quotes without making an observation (`_paper._quote`,
  over `SnapshotView.quote_figures`): the same Quote as `quote`, which asks the
  view for the observation, for every market of every view of the example
  recording, as the replay gives them (columns), once an observation of the
  market was made, and as views of observations (what the price guard gives when
  it replaces one); for a market the view does not have; and for clearly
  synthetic markets with fees and missing sides;
- an opening's free balances come from one pass over the book (`_free_of`): the
  same floats as `free(exchange)` for each exchange;
- a close's event reads the pnl parts in one pass (`parts()`): the same floats as
  the `funding`, `fees`, `price` and `borrow` properties, and `pnl` their sum."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rulebook.lang import Subject
from rulebook.market import Observation, ReplaySource, SnapshotView
from rulebook.trading import TradingConfig
from rulebook.trading._book import PaperLeg, PaperPosition
from rulebook.trading._paper import PaperExecutor, Quote, _quote, quote

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
T = 1_704_067_200_000


def _keys(view: SnapshotView) -> list[tuple[str, str, str]]:
    keys = [k for k in view.keys() if k[2] in ("perp", "spot")]
    coins = {k[1] for k in keys}
    return [*keys, ("okx", "NOSUCH", "perp"), ("gate", sorted(coins)[0], "spot")]


def test_the_quotes_read_in_place_are_quotes_views_give() -> None:
    compared = 0
    for n, view in enumerate(ReplaySource(EXAMPLE)):
        if n % 7:
            continue
        keys = _keys(view)
        # as the replay gives it: no observation made yet
        got = [_quote(view, e, c, m) for e, c, m in keys]
        # as `quote` reads it (which makes the observations), then again from those
        want = [quote(view, e, c, m) for e, c, m in keys]
        assert got == want
        assert [_quote(view, e, c, m) for e, c, m in keys] == want
        # a view of observations (the guard's, when it replaces one)
        of_obs = SnapshotView(view.at, {o.key: o for o in view.observations()}, recorded=True)
        assert [_quote(of_obs, e, c, m) for e, c, m in keys] == want
        for key in keys:
            o = view.get(*key)
            figures = None if o is None else (o.mark, o.bid, o.ask, o.taker_fee)
            assert of_obs.quote_figures(key) == figures
        compared += len(keys)
    assert compared > 1000
    assert Quote(None, None, None, None) in want  # a market the view lacks


def test_a_fresh_columnar_view_reads_its_rows_in_place() -> None:
    view = next(iter(ReplaySource(EXAMPLE)))
    cols = view.columns()
    fresh = SnapshotView.from_columns(cols)
    for key in view.keys():
        o = view.get(*key)
        assert o is not None
        assert fresh.quote_figures(key) == (o.mark, o.bid, o.ask, o.taker_fee)
    assert not fresh._made  # read in place: no observation made


def test_synthetic_markets_with_fees_and_missing_sides() -> None:
    """Clearly synthetic: every combination of a perp's and a spot's figures (fees
    observed or not, a side missing, no mark), as columns and as observations."""
    obs = {}
    for i, (mark, bid, ask, fee) in enumerate(
        [(100.0, 99.9, 100.1, 0.0004), (100.0, None, 100.1, None), (None, 99.9, 100.1, 0.0006),
         (None, None, 100.2, 0.0005), (101.0, 99.0, None, None)]
    ):  # fmt: skip
        coin = f"C{i}"
        obs[("okx", coin, "perp")] = Observation.checked(
            ts=T, exchange="okx", coin=coin, market="perp", mark=mark, index=100.0,
            funding_rate=0.0001, funding_interval_h=8, bid=bid, ask=ask, taker_fee=fee,
        )  # fmt: skip
        if bid is not None or ask is not None:
            obs[("okx", coin, "spot")] = Observation.checked(
                ts=T, exchange="okx", coin=coin, market="spot", bid=bid, ask=ask, taker_fee=fee
            )
    of_obs = SnapshotView(T, obs, recorded=True)
    columnar = SnapshotView.from_columns(of_obs.columns())
    keys = [*obs, ("okx", "C9", "perp"), ("okx", "C3", "spot")]
    want = [quote(of_obs, *k) for k in keys]
    assert any(q.fee_observed for q in want) and any(q.fee_observed is None for q in want)
    assert [_quote(columnar, *k) for k in keys] == want
    assert [_quote(of_obs, *k) for k in keys] == want
    assert [quote(columnar, *k) for k in keys] == want


_money = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_positive = st.floats(min_value=1e-6, max_value=1e6)
_legs = st.lists(
    st.builds(
        PaperLeg,
        exchange=st.sampled_from(["okx", "gate", "bybit"]),
        market=st.sampled_from(["perp", "spot"]),
        side=st.sampled_from(["long", "short"]),
        borrowed=st.booleans(),
        size=_positive,
        entry_price=_positive,
        entry_fee=_positive,
        mark=_positive,
        funding=_money,
        borrow=_positive,
        exit_price=st.one_of(st.none(), _positive),
        exit_fee=_positive,
    ),  # fmt: skip
    min_size=1,
    max_size=3,
)


def _position(i: int, legs: list[PaperLeg], notional: float) -> PaperPosition:
    return PaperPosition(
        id=i, rule_name="r", bindings={}, ruleset_sha="x",
        subject=Subject("hedge", "SOL", ()), legs=legs, notional=notional, opened_at=0,
    )  # fmt: skip


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@given(st.lists(st.tuples(_legs, _positive), max_size=8), st.sampled_from([1.0, 3.0, 7.5]))
def test_the_free_balances_of_one_pass_are_free_of_each(book: list, leverage: float) -> None:
    ex = PaperExecutor.__new__(PaperExecutor)  # only the book, cash and config are read
    ex.config = TradingConfig(leverage=leverage)
    ex.cash = {"okx": 1000.0, "gate": 250.5}
    ex._positions = {i: _position(i, legs, n) for i, (legs, n) in enumerate(book)}
    exchanges = ["okx", "gate", "bybit", "backpack"]  # bybit: no cash; backpack: no legs
    got = ex._free_of(exchanges)
    assert list(got) == exchanges
    for e in exchanges:
        assert got[e] == ex.free(e) and type(got[e]) is float


@given(_legs)
def test_a_close_reads_the_parts_the_properties_give(legs: list[PaperLeg]) -> None:
    p = _position(1, legs, 100.0)
    funding, fees, price, borrow = p.parts()
    assert _same(funding, p.funding) and _same(fees, p.fees)
    assert _same(price, p.price) and _same(borrow, p.borrow)
    assert _same(sum(p.parts()), p.pnl)
