"""The paper executor's marking reads every held market's price from the view's
columns at once; it must mark exactly as asking the view for each leg's
(mark, bid, ask) and `_ref_of` does (the way it was written first, kept here as
the oracle; tests/test_view_columns.py holds `_ref_of` to the quotes).

Synthetic views (clearly not market data): perps and spots with fields left
out, markets missing from a view, several legs on one market, views of
observations and views made from columns, and books that change between
cycles. Equity is held to `PaperPosition.price` both ways the executor sums it
(the book's arrays, and position by position for a small book). Marking is also
checked over views that share read-only code arrays from cycle to cycle, as a
replay's do (the executor then keeps each market's row between cycles).
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from rulebook.lang import Subject
from rulebook.market import Observation, SnapshotView
from rulebook.trading import Ledger, PaperExecutor, TradingConfig, _paper
from rulebook.trading._book import PaperLeg, PaperPosition
from rulebook.trading._paper import _ref_of  # held to `quote` by tests/test_view_columns.py

T0 = 1_735_689_600_000
EXCHANGES = ("binance", "bybit", "okx")
COINS = ("SOL", "ETH", "BTC", "DOGE")


def _mark_one_by_one(
    positions: list[PaperPosition], view: SnapshotView, moved: dict[tuple[str, str, str], float]
) -> None:
    """Marking as first written: each leg's market asked of the view."""
    for p in positions:
        for leg in p.legs:
            key = (leg.exchange, p.coin, leg.market)
            o = view.get(*key)
            ref = None if o is None else _ref_of(leg.market, o.mark, o.bid, o.ask)
            if ref is not None and ref != leg.mark:
                leg.mark = ref
                moved[key] = ref


def _view(rng: random.Random, t: int) -> SnapshotView:
    obs = []
    for e in EXCHANGES:
        for c in COINS:
            for market in ("perp", "spot"):
                if rng.random() < 0.15:
                    continue  # not in this view
                px = rng.choice([100.0, 100.5, 101.25, 99.0 + rng.random()])
                fields: dict[str, Any] = {
                    "ts": t, "exchange": e, "coin": c, "market": market,
                    "bid": px * 0.999, "ask": px * 1.001,
                }  # fmt: skip
                if market == "perp":
                    fields.update(mark=px, funding_rate=0.0001, funding_interval_h=8,
                                  next_funding_ts=t + 3_600_000)  # fmt: skip
                for name in ("bid", "ask", "mark"):
                    if name in fields and rng.random() < 0.2:
                        del fields[name]
                if "bid" not in fields and "ask" not in fields and "mark" not in fields:
                    fields["ask"] = px
                obs.append(Observation.checked(**fields))
    view = SnapshotView.from_observations(obs, at=t, recorded=True)
    if rng.random() < 0.5:  # the same prices as a view of columns (a Parquet replay's)
        view = SnapshotView.from_columns(view.columns(), settlements=())
    return view


def _position(rng: random.Random, pid: int) -> PaperPosition:
    coin = rng.choice(COINS)
    legs = []
    for market in rng.sample(["perp", "spot", "perp"], k=rng.choice([1, 2, 2, 3])):
        legs.append(PaperLeg(rng.choice(EXCHANGES), market, rng.choice(["long", "short"]),
                             False, rng.uniform(0.1, 5.0), 100.0 * (1 + rng.gauss(0, 0.01)), 0.0,
                             rng.choice([100.0, 100.5])))  # fmt: skip
    return PaperPosition(pid, "r", {}, "sha", Subject("funding", coin, ()), legs, 100.0, T0)


def _marks(positions: list[PaperPosition]) -> list[float]:
    return [leg.mark for p in positions for leg in p.legs]


@pytest.mark.parametrize("small_book", [0, 12, 10**6])
def test_marking_and_equity_from_the_columns_as_each_leg_asked_of_the_view(
    tmp_path, monkeypatch: pytest.MonkeyPatch, small_book: int
) -> None:
    # both ways of summing equity: the whole book's arrays (0: every book), position by
    # position (10**6: every book), and both in one run (12: the books here change size)
    monkeypatch.setattr(_paper, "SMALL_BOOK", small_book)
    rng = random.Random(3)
    ledger = Ledger(tmp_path / "paper.db")
    ex = PaperExecutor(TradingConfig(), ledger)
    changed = 0
    for world in range(40):
        mine = {i: _position(rng, i) for i in range(1, rng.randint(1, 30))}
        oracle = {i: PaperPosition(p.id, p.rule_name, p.bindings, p.ruleset_sha, p.subject,
                                   [PaperLeg(**{f: getattr(leg, f) for f in leg.__slots__})
                                    for leg in p.legs], p.notional, p.opened_at)
                  for i, p in mine.items()}  # fmt: skip
        ex._positions.clear()
        ex._positions.update(mine)
        for cycle in range(12):
            t = T0 + (world * 12 + cycle) * 60_000
            if cycle and mine and rng.random() < 0.2:  # the book changes between cycles
                gone = rng.choice(sorted(mine))
                del mine[gone], oracle[gone], ex._positions[gone]
            view = _view(rng, t)
            want: dict[tuple[str, str, str], float] = {}
            _mark_one_by_one(list(oracle.values()), view, want)
            ex._marks = {}
            ex.mark(view)
            assert _marks(list(mine.values())) == _marks(list(oracle.values()))
            assert list(ex._marks.items()) == list(want.items())  # same markets, same order
            changed += len(want)
            # equity: each position's price pnl as PaperPosition.price sums it, bit for bit
            if rng.random() < 0.3 and mine:  # a closed leg is priced at its exit
                leg = rng.choice(rng.choice(list(mine.values())).legs)
                leg.exit_price = rng.choice([99.5, 100.25])
            ex.cash = {"binance": rng.choice([1000.0, 1e8 / 3]), "okx": 0.1}
            want_equity = sum(ex.cash.values()) + sum(p.price for p in mine.values())
            assert ex.equity() == want_equity
    assert changed > 500
    ledger.close()


def test_marking_over_views_that_share_their_code_arrays(tmp_path) -> None:
    """A replay's consecutive views share read-only code arrays while no market is
    added; marking keeps each market's row while they are the same objects, and must
    still mark each view's own prices (and find the rows again when a market is added)."""
    rng = random.Random(8)
    ledger = Ledger(tmp_path / "paper.db")
    ex = PaperExecutor(TradingConfig(), ledger)
    mine = {i: _position(rng, i) for i in range(1, 25)}
    oracle = {i: PaperPosition(p.id, p.rule_name, p.bindings, p.ruleset_sha, p.subject,
                               [PaperLeg(**{f: getattr(leg, f) for f in leg.__slots__})
                                for leg in p.legs], p.notional, p.opened_at)
              for i, p in mine.items()}  # fmt: skip
    ex._positions.update(mine)
    base = _view(rng, T0).columns()
    kept = 0
    for cycle in range(60):
        if cycle % 20 == 0:  # another set of markets: new code arrays
            base = _view(rng, T0 + cycle).columns()
            for name in ("exchange", "coin", "market"):
                getattr(base, name).setflags(write=False)
        n = len(base)
        prices = {
            name: np.where(rng.random() < 0.2, np.nan, 100.0 + np.arange(n) * 0.01 + cycle)
            for name in ("mark", "bid", "ask")
        }
        cols = replace(base, at=T0 + cycle, **prices)
        view = SnapshotView.from_columns(cols, settlements=())
        want: dict[tuple[str, str, str], float] = {}
        _mark_one_by_one(list(oracle.values()), view, want)
        ex._marks = {}
        ex.mark(view)
        assert _marks(list(mine.values())) == _marks(list(oracle.values()))
        assert list(ex._marks.items()) == list(want.items())
        kept += _paper._last_table is not None and _paper._last_table[0][0] is base.exchange
    assert kept == 60  # the rows were kept, and every view marked its own prices
    ledger.close()
