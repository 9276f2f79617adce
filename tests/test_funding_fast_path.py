"""The funding step's fast path pays exactly what the settlement rule pays.

The fast path (docs/performance.md, "The funding step") is three things:
`SettlementLog.add_view` reads a view's columns and keeps each series no
open leg holds in numpy slots (`_Compact`) instead of a `_Series`; the
runtime's `FundingStep` forgets per market (what its open legs can still be
paid from) instead of before the earliest open leg of any market; and it
watches intervals through `SettlementLog.shown` instead of the view's
`Observation`s.

- On random worlds (outages, repeated and late observations, missing fields,
  interval switches, late records) the log fed by views holds, after every
  step, the very state of a log fed observation by observation.
- On the real funding histories of tests/fixtures/funding-history (the Bybit
  INJ slice with its 8h/1h switches among them), as replays with and without
  settlement records, with cycles dropped (outages) and from Parquet:
  `FundingStep` makes, for positions opened and closed at random, the same
  payments (every field, bit for bit), reports the same missing settlements
  and the same interval changes as the rule itself: one `SettlementLog` fed
  observation by observation that never forgets, asked for every leg at
  every cycle.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rulebook.history import import_history, read_history, write_history, write_recording
from rulebook.lang import Subject
from rulebook.market import (
    IntervalWatch,
    Observation,
    ReplaySource,
    Settlement,
    SettlementLog,
    SnapshotView,
)
from rulebook.market._settling import _Pending
from rulebook.trading._book import PaperLeg, PaperPosition
from rulebook.trading._funding import FundingStep

H = 3_600_000
M = 60_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
FX = Path(__file__).parent / "fixtures" / "funding-history"


# -- the log's state, whatever form it is kept in ---------------------------------------


def _state(log: SettlementLog, key: tuple[str, str]) -> tuple[Any, ...] | None:
    """What the log knows of one market, without changing how it keeps it."""
    s = log._known_series(key)  # from a slot, or with rows still pending written in
    if s is None:
        return None
    return (s.records, s.had_records, s.forecasts, s.mark_ts, s.marks, s.intervals)


def _random_world(rng: random.Random) -> list[SnapshotView]:
    markets = [(e, c) for e in ("binance", "backpack") for c in ("SOL", "BTC", "ETH")]
    interval = {k: (1 if k[0] == "backpack" else 8) for k in markets}
    last: dict[tuple[str, str], Observation] = {}
    views = []
    t = T0
    for _ in range(rng.randint(20, 60)):
        t += rng.choice([M, 30 * M, H, H, H, 2 * H, 9 * H])
        latest: dict[tuple[str, str, str], Observation] = {}
        records = []
        for key in markets:
            roll = rng.random()
            if roll < 0.1:
                continue  # not in this view (an outage)
            if roll < 0.2 and key in last:
                o = last[key]  # the same observation again
            else:
                if rng.random() < 0.1:
                    interval[key] = 1 if interval[key] == 8 else 8
                step = interval[key] * H
                ts = t - rng.choice([0, 0, 0, M])
                if rng.random() < 0.05 and key in last:
                    ts = last[key].ts - M  # late: older than the one seen before
                fields: dict[str, Any] = {
                    "ts": ts, "exchange": key[0], "coin": key[1], "market": "perp",
                    "funding_rate": rng.choice([0.0001, -0.0002, 0.0003]),
                    "funding_interval_h": interval[key],
                    "next_funding_ts": (ts // step + 1) * step,
                    "mark": 100.0 + rng.random(),
                }  # fmt: skip
                for name in ("funding_rate", "funding_interval_h", "next_funding_ts", "mark"):
                    if rng.random() < 0.05:
                        del fields[name]
                if rng.random() < 0.05:
                    fields["next_funding_ts"] = ts  # shown at the settlement: no forecast
                o = Observation.checked(**fields)
                last[key] = o
            latest[(key[0], key[1], "perp")] = o
            if rng.random() < 0.2:
                step = interval[key] * H
                records.append(Settlement.checked(
                    ts=(t // step) * step - rng.choice([0, step]), exchange=key[0], coin=key[1],
                    funding_rate=0.0002, funding_interval_h=interval[key],
                    mark=rng.choice([None, 101.0]),
                ))  # fmt: skip
        views.append(SnapshotView(t, latest, settlements=records))
    return views


@pytest.mark.parametrize("few", [0, 4, 1000])
def test_a_log_fed_by_views_holds_what_one_fed_observation_by_observation_holds(
    monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    # pending rows written in bulk (0), one slot at a time (1000), or as the log does
    monkeypatch.setattr(_Pending, "FEW", few)
    rng = random.Random(13)
    slotted = 0
    for _ in range(150):
        views = _random_world(rng)
        fast, plain = SettlementLog(wait_ms=0), SettlementLog(wait_ms=0)
        keys: set[tuple[str, str]] = set()
        for v in views:
            fast.add_view(v)
            for o in v.perps():
                plain.observe(o)
                keys.add((o.exchange, o.coin))
            plain.add_records(v.settlements)
            for key in keys:
                assert _state(fast, key) == _state(plain, key)
            # some markets are read (a read turns a slot back into a _Series)
            for key in rng.sample(sorted(keys), k=min(len(keys), rng.choice([0, 0, 1, 2]))):
                after = v.at - rng.choice([0, H, 8 * H])
                assert fast.settle(*key, after=after, upto=v.at, now=v.at) == plain.settle(
                    *key, after=after, upto=v.at, now=v.at
                )
                assert fast.quiet(*key, after=after, upto=v.at) == plain.quiet(
                    *key, after=after, upto=v.at
                )
            held = {k: v.at - rng.choice([0, H, 8 * H, 30 * H]) for k in keys if rng.random() < 0.3}
            cut = v.at - rng.choice([0, 0, H])
            fast.forget_before(cut, keep=held)
            plain.forget_before(cut, keep=held)
            for key in keys:
                assert _state(fast, key) == _state(plain, key)
            slotted += int(fast._slots.here[: fast._slots.size].sum())
            for key in keys:
                now = v.perp(*key)
                assert fast.shown(*key) == (
                    None if now is None else (now.ts, now.funding_interval_h)
                )
    assert slotted > 1000  # the slots were used, not only the _Series


# -- the runtime's step on real funding histories ----------------------------------------


class _Executor:
    """The two things FundingStep asks of an executor: the open positions, and a payment."""

    def __init__(self) -> None:
        self.positions: dict[int, PaperPosition] = {}
        self.paid: list[tuple[Any, ...]] = []

    def settle_funding(self, p: PaperPosition, leg: PaperLeg, s: Any) -> Any:
        self.paid.append((p.id, leg.exchange, s.exchange, s.coin, s.ts, s.interval_h, s.rate,
                          s.mark, s.rate_source, s.mark_source))  # fmt: skip
        return SimpleNamespace(amount=-leg.sign * leg.size * s.mark * s.rate)


class _Rule:
    """The settlement rule itself: one log fed observation by observation, never
    forgetting, asked for every perp leg at every cycle (spec 11, step 1)."""

    def __init__(self, wait_ms: int, expect_records: bool) -> None:
        self.log = SettlementLog(wait_ms=wait_ms, expect_records=expect_records)
        self.after: dict[tuple[int, str], int] = {}
        self.paid: list[tuple[Any, ...]] = []
        self.missing: set[tuple[tuple[int, str], int]] = set()
        self.watch = IntervalWatch()
        self.intervals: list[tuple[int | None, str]] = []

    def _see(self, key: tuple[int, str], coin: str, ts: int, h: float | None) -> None:
        change = self.watch.see(key, key[1], coin, ts, h)
        if change is not None:
            self.intervals.append((key[0], change.text()))

    def leg(self, p: PaperPosition, leg: PaperLeg, t: int, now: int) -> None:
        key = (p.id, leg.exchange)
        after = max(p.opened_at, self.after.get(key, 0))
        got = self.log.settle(leg.exchange, p.coin, after=after, upto=t, now=now,
                              fallback_mark=leg.mark)  # fmt: skip
        self.missing.update((key, when) for when in got.missing)
        for s in got.settled:
            self.paid.append((p.id, leg.exchange, s.exchange, s.coin, s.ts, s.interval_h,
                              s.rate, s.mark, s.rate_source, s.mark_source))  # fmt: skip
            self.after[key] = s.ts
            self._see(key, p.coin, s.ts, s.interval_h)

    def settle(self, positions: list[PaperPosition], view: SnapshotView, t: int) -> None:
        for o in view.observations():
            self.log.observe(o)
        self.log.add_records(view.settlements)
        for p in positions:
            for leg in p.legs:
                self.leg(p, leg, t, t)
                now = view.perp(leg.exchange, p.coin)
                if now is not None:
                    self._see((p.id, leg.exchange), p.coin, now.ts, now.funding_interval_h)


def _recordings(tmp: Path) -> list[tuple[str, Path]]:
    """Replays of every fixture history, both look-aheads, with and without records."""
    sources = {
        "supervik": [FX / "supervik"],
        "aha-hh": [FX / "aha-hh" / "all_exchanges.csv"],
        "zushen": [FX / "zushen" / "binance_bybit_BTC_ETH_SOL.csv"],
        "bybit-inj-intervals": [FX / "zushen" / "venue=bybit" / "data.parquet"],
    }
    out = []
    for name, paths in sources.items():
        res = import_history(paths)
        hist_path = tmp / f"{name}.history.jsonl"
        write_history(hist_path, res.records)
        history, problems = read_history([hist_path])
        assert problems == []
        for lookahead in ("last-settled", "next-settlement"):
            rec = tmp / f"{name}-{lookahead}.jsonl"
            write_recording(history, rec, lookahead)
            out.append((f"{name} {lookahead}", rec))
            lines = rec.read_text().splitlines(keepends=True)
            bare = tmp / f"{name}-{lookahead}-no-records.jsonl"
            bare.write_text("".join(x for x in lines if '"settlement"' not in x))
            out.append((f"{name} {lookahead} without records", bare))
    return out


def _replay(
    views: list[SnapshotView], rng: random.Random, wait_ms: int, expect_records: bool
) -> tuple[_Executor, FundingStep, _Rule, int]:
    ledger = SimpleNamespace(read=SimpleNamespace(last_funding_payments=dict))
    step = FundingStep(ledger, wait_ms, expect_records=expect_records)  # type: ignore[arg-type]
    rule = _Rule(wait_ms, expect_records)
    ex = _Executor()
    events: list[tuple[int | None, str]] = []
    slotted = 0
    pid = 0
    for view in views:
        t = view.at
        step.settle(ex, view, t)  # type: ignore[arg-type]
        rule.settle(list(ex.positions.values()), view, t)
        slotted += int(step.log._slots.here[: step.log._slots.size].sum())
        for p in list(ex.positions.values()):  # closes, each paid what still waits first
            if rng.random() < 0.1:
                step.settle_now(ex, p, t)  # type: ignore[arg-type]
                for leg in p.legs:
                    rule.leg(p, leg, t, t + 10**15)
                del ex.positions[p.id]
        events += [(e.position_id, e.text) for e in step.drain_events() if e.kind == "interval"]
        perps = [o for o in view.observations() if o.market == "perp"]
        for o in rng.sample(perps, k=min(len(perps), rng.choice([0, 0, 1, 2]))):
            pid += 1
            others = [q for q in perps if q.coin == o.coin and q.exchange != o.exchange]
            mark = o.mark or 100.0
            side, size = rng.choice(["long", "short"]), rng.choice([0.5, 2.0, 3.0])
            legs = [PaperLeg(o.exchange, "perp", side, False, size, mark, 0.0, mark)]
            if others and rng.random() < 0.5:  # a spread: a second perp leg
                q = rng.choice(others)
                legs.append(PaperLeg(q.exchange, "perp", "long", False, 1.0, 100.0, 0.0,
                                     q.mark or 100.0))  # fmt: skip
            ex.positions[pid] = PaperPosition(
                pid, "r", {}, "sha", Subject("funding", o.coin, (o.exchange,)), legs, 1000.0, t
            )
    assert ex.paid == rule.paid
    assert step._missing_told == rule.missing
    assert events == rule.intervals
    return ex, step, rule, slotted


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    return _recordings(tmp_path_factory.mktemp("histories"))


@pytest.mark.parametrize("wait_ms", [0, 10 * M])
@pytest.mark.parametrize("expect_records", [False, True])
def test_the_funding_step_pays_what_the_rule_pays_on_real_histories(
    recordings: list[tuple[str, Path]], wait_ms: int, expect_records: bool
) -> None:
    rng = random.Random(wait_ms + expect_records)
    paid = estimated = settled = missing = intervals = slotted = 0
    for _name, path in recordings:
        views = list(ReplaySource(path))
        for sparse in (False, True):  # and with cycles dropped: outages
            got = [v for v in views if not sparse or rng.random() < 0.6]
            ex, step, rule, used = _replay(got, rng, wait_ms, expect_records)
            paid += len(ex.paid)
            estimated += sum(1 for p in ex.paid if p[8] == "estimated")
            settled += sum(1 for p in ex.paid if p[8] == "settled")
            missing += len(rule.missing)
            intervals += len(rule.intervals)
            slotted += used
    # every kind of payment and report was exercised, and the slots were used
    assert paid > 500 and estimated > 100 and settled > 100
    assert missing > 0 and intervals > 0 and slotted > 200


def test_the_funding_step_pays_what_the_rule_pays_from_parquet(
    recordings: list[tuple[str, Path]], tmp_path: Path
) -> None:
    pytest.importorskip("pyarrow")
    from rulebook.market import convert

    rng = random.Random(5)
    paid = 0
    for name, path in recordings:
        if not name.startswith("bybit-inj"):
            continue
        parquet = tmp_path / (path.stem + ".parquet")
        convert(path, parquet)
        views = list(ReplaySource(parquet))
        assert views and views[0]._latest is None  # columnar views, no Observations held
        ex, _, _, _ = _replay(views, rng, 0, False)
        paid += len(ex.paid)
    assert paid > 50
