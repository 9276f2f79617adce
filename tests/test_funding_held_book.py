"""A large held book: the funding step visits only the legs that may have something
to do, and pays exactly what the settlement rule pays.

`FundingStep.settle` knows from arrays, without asking the settlement log, that
most held perp legs have nothing to settle this cycle (the log's last
`quiet_state` of the leg still stands: the market's `versions` count has not
moved and the next settlement is later) and that their market's interval is
no news to the interval watch. Here, on the real funding histories of
tests/fixtures/funding-history (the Bybit INJ slice with its 8h/1h switches
among them, also from Parquet), with and without settlement records, with
cycles dropped, and with many positions held on every market at once (several
on one market, opened at different times, so each market's legs are paid from
different times):

- every leg the step does not visit is one the log itself calls quiet, at
  that cycle;
- the payments (every field, bit for bit, in order), the missing settlements
  and the interval changes are those of the rule itself (one log fed
  observation by observation that never forgets, asked for every leg at every
  cycle).

The same on random synthetic worlds (outages, repeated and late observations,
fields left out, so an interval can change with no forecast shown, 8h/1h
switches, late records).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_funding_fast_path import _Executor, _random_world, _recordings, _Rule

from rulebook.lang import Subject
from rulebook.market import ReplaySource, SnapshotView
from rulebook.trading._book import PaperLeg, PaperPosition
from rulebook.trading._funding import FundingStep, _Legs

M = 60_000


def _with_quiet_cycles(views: list[SnapshotView], rng: random.Random) -> list[SnapshotView]:
    """The views, with cycles between them that repeat the last view's data at a later
    time and bring no records (a runtime cycles more often than a history settles):
    the cycles in which most legs have nothing to do."""
    out: list[SnapshotView] = []
    for a, b in zip(views, views[1:] + [None], strict=True):
        out.append(a)
        if b is None or b.at - a.at < 4 * M:
            continue
        for t in sorted(rng.sample(range(a.at + M, b.at, M), k=min(2, (b.at - a.at) // M - 1))):
            if a._latest is None:  # a columnar view: the same columns at a later time
                out.append(SnapshotView.from_columns(replace(a.columns(), at=t), settlements=()))
            else:
                out.append(SnapshotView(t, {o.key: o for o in a.observations()}, recorded=True))
    return out


class _CheckedStep(FundingStep):
    """The funding step, checking each cycle that what it skips is quiet."""

    skipped = 0
    visited = 0

    def _due(self, legs: _Legs, t: int) -> list[int]:
        visit = super()._due(legs, t)
        seen = set(visit)
        for i, (p, leg) in enumerate(legs.perp):
            if int(legs.order[i]) in seen:
                self.visited += 1
                continue
            self.skipped += 1
            after = int(legs.after[i])
            assert after == self.after(p, leg)
            assert self.log.quiet(leg.exchange, p.coin, after=after, upto=t), (p.id, t)
        return visit


def _held_replay(
    views: list[SnapshotView], rng: random.Random, wait_ms: int, expect_records: bool,
    opens: tuple[int, ...] = (0, 0, 1, 2),
) -> tuple[_CheckedStep, _Rule, int]:  # fmt: skip
    ledger = SimpleNamespace(read=SimpleNamespace(last_funding_payments=dict))
    step = _CheckedStep(ledger, wait_ms, expect_records=expect_records)  # type: ignore[arg-type]
    rule = _Rule(wait_ms, expect_records)
    ex = _Executor()
    events: list[tuple[int | None, str]] = []
    most = pid = 0
    for view in views:
        t = view.at
        step.settle(ex, view, t)  # type: ignore[arg-type]
        rule.settle(list(ex.positions.values()), view, t)
        for p in list(ex.positions.values()):  # a few close, each paid what still waits
            if rng.random() < 0.03:
                step.settle_now(ex, p, t)  # type: ignore[arg-type]
                for leg in p.legs:
                    rule.leg(p, leg, t, t + 10**15)
                del ex.positions[p.id]
        events += [(e.position_id, e.text) for e in step.drain_events() if e.kind == "interval"]
        perps = [o for o in view.observations() if o.market == "perp"]
        for o in perps:  # several positions on every market, opened at different times
            for _ in range(rng.choice(opens)):
                pid += 1
                others = [q for q in perps if q.coin == o.coin and q.exchange != o.exchange]
                mark = o.mark or 100.0
                side = rng.choice(["long", "short"])
                legs = [PaperLeg(o.exchange, "perp", side, False, 1.5, mark, 0.0, mark)]
                if others and rng.random() < 0.3:  # a spread: a second perp leg
                    q = rng.choice(others)
                    legs.append(PaperLeg(q.exchange, "perp", "long", False, 1.0, 100.0, 0.0,
                                         q.mark or 100.0))  # fmt: skip
                ex.positions[pid] = PaperPosition(
                    pid, "r", {}, "sha", Subject("funding", o.coin, (o.exchange,)), legs,
                    1000.0, t,
                )  # fmt: skip
        most = max(most, len(ex.positions))
    assert ex.paid == rule.paid
    assert step._missing_told == rule.missing
    assert events == rule.intervals
    return step, rule, most


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    return _recordings(tmp_path_factory.mktemp("histories"))


@pytest.mark.parametrize(
    ("wait_ms", "expect_records", "sparse"), [(0, False, False), (10 * M, True, True)]
)
def test_a_large_held_book_is_paid_what_the_rule_pays(
    recordings: list[tuple[str, Path]], wait_ms: int, expect_records: bool, sparse: bool
) -> None:
    rng = random.Random(wait_ms)
    skipped = visited = paid = intervals = most = 0
    for _name, path in recordings:
        views = _with_quiet_cycles(list(ReplaySource(path)), rng)
        got = [v for v in views if not sparse or rng.random() < 0.6]  # sparse: outages
        step, rule, held = _held_replay(got, rng, wait_ms, expect_records)
        skipped += step.skipped
        visited += step.visited
        paid += len(rule.paid)
        intervals += len(rule.intervals)
        most = max(most, held)
    # the arrays skipped many legs (a leg whose settlement waits for its record is
    # visited every cycle, and these histories settle at most of their own cycles),
    # and every kind of thing happened
    assert skipped > 5_000 and paid > 1000 and intervals > 0 and most > 100


def test_a_large_held_book_from_parquet(recordings: list[tuple[str, Path]], tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from rulebook.market import convert

    rng = random.Random(9)
    paid = skipped = 0
    for name, path in recordings:
        if not name.startswith("bybit-inj"):
            continue
        parquet = tmp_path / (path.stem + ".parquet")
        convert(path, parquet)
        views = _with_quiet_cycles(list(ReplaySource(parquet)), rng)
        assert views and all(v._latest is None for v in views)  # columnar views
        step, rule, _ = _held_replay(views, rng, 0, False)
        paid += len(rule.paid)
        skipped += step.skipped
    assert paid > 200 and skipped > 500



def test_a_large_held_book_on_random_worlds() -> None:
    rng = random.Random(21)
    skipped = intervals = paid = 0
    for _ in range(30):
        views = _with_quiet_cycles(_random_world(rng), rng)
        wait_ms, expect = rng.choice([(0, False), (10 * M, False), (10 * M, True)])
        step, rule, _ = _held_replay(views, rng, wait_ms, expect, opens=(0, 0, 0, 1))
        skipped += step.skipped
        intervals += len(rule.intervals)
        paid += len(rule.paid)
    assert skipped > 1000 and intervals > 50 and paid > 1000
