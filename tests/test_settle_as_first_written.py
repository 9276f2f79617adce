"""`SettlementLog.settle` and `resolve` give what they gave as first written.

They were rewritten for speed (one look-up of the series, the previous
settlement's interval read without building its `SettledFunding`, the
settlement times found by bisection). The first version is kept here as the
oracle, word for word but for reading the series through `_known_series`; on
random worlds (outages, repeated and late observations, fields left out,
interval switches, late records) and at random `after`, `upto`, `now` and
fallback marks, both give the same payments, waits and missing settlements.
`settle_with_state` gives the same, and the `quiet_state` of the time paid up to.
"""

from __future__ import annotations

import random

from test_funding_fast_path import H, M, _random_world

from rulebook.market import SettledFunding, SettlementLog
from rulebook.market._settling import SettleResult, _Series


def _implied(prev: SettledFunding | None, nxt: int, nxt_interval_h: float | None,
             upto: int) -> list[int]:  # fmt: skip
    if prev is None or not prev.interval_h:
        return []
    step = round(prev.interval_h * 3_600_000)
    gap = nxt - prev.ts
    if nxt_interval_h is not None and nxt_interval_h * 3_600_000 >= gap - step // 10:
        return []
    out = []
    s = prev.ts + step
    while s < nxt - step // 10 and s <= upto:
        out.append(s)
        s += step
    return out


def _resolve(log: SettlementLog, series: _Series | None, exchange: str, coin: str, s: int,
             now: int, fallback_mark: float | None) -> SettledFunding | None:  # fmt: skip
    if series is None:
        return None
    perp = series.perp_at(s)
    rec = series.records.get(s)
    if rec is not None:
        rate, rate_src = rec.funding_rate, "settled"
        interval = rec.funding_interval_h
    else:
        fc = series.forecasts.get(s)
        if fc is None:
            return None
        waits = log.expect_records or series.had_records
        if waits:
            seen = series.first_seen(s)
            if seen is None or now - seen < log.wait_ms:
                return None
        rate, rate_src = fc.rate, "estimated"
        interval = fc.interval_h
    if interval is None and perp is not None:
        interval = perp[1]
    if rec is not None and rec.mark is not None:
        mark, mark_src = rec.mark, "settlement"
    elif perp is not None:
        mark, mark_src = perp[0], "perp"
    elif fallback_mark is not None:
        mark, mark_src = fallback_mark, "position"
    else:
        return None
    return SettledFunding(exchange, coin, s, interval, rate, mark, rate_src, mark_src)  # type: ignore[arg-type]


def _settle(log: SettlementLog, exchange: str, coin: str, *, after: int, upto: int, now: int,
            fallback_mark: float | None = None) -> SettleResult:  # fmt: skip
    out = SettleResult()
    series = log._known_series((exchange, coin))
    if series is None:
        return out
    known = series.known()
    prev: SettledFunding | None = None
    if after in series.records or after in series.forecasts:
        prev = _resolve(log, series, exchange, coin, after, now, fallback_mark)
    beyond = next((s for s in known if s > upto), None)
    for s in [s for s in known if after < s <= upto]:
        got = _resolve(log, series, exchange, coin, s, now, fallback_mark)
        if got is None:
            out.waiting = s
            return out
        out.missing.extend(_implied(prev, s, got.interval_h, upto))
        out.settled.append(got)
        prev = got
    if beyond is not None:
        out.missing.extend(_implied(prev, beyond, series.interval_of(beyond), upto))
    return out


def test_settle_and_resolve_give_what_they_gave_as_first_written() -> None:
    rng = random.Random(17)
    paid = waiting = missing = 0
    for _ in range(120):
        views = _random_world(rng)
        wait_ms, expect = rng.choice([(0, False), (10 * M, False), (10 * M, True)])
        log = SettlementLog(wait_ms=wait_ms, expect_records=expect)
        for v in views:
            log.add_view(v)
            keys = sorted({(o.exchange, o.coin) for o in v.perps()})
            for key in keys:
                series = log._known_series(key)
                times = sorted({*series.records, *series.forecasts}) if series else []
                for _ in range(3):
                    after = rng.choice([*times, v.at - rng.choice([0, H, 8 * H, 30 * H])])
                    upto = rng.choice([v.at, v.at - H, after + rng.choice([0, H, 9 * H])])
                    now = rng.choice([upto, upto + 5 * M, upto + 10**15])
                    fallback = rng.choice([None, 99.5])
                    want = _settle(log, *key, after=after, upto=upto, now=now,
                                   fallback_mark=fallback)  # fmt: skip
                    got = log.settle(*key, after=after, upto=upto, now=now,
                                     fallback_mark=fallback)  # fmt: skip
                    assert got == want
                    # and the state it gives with it: quiet_state at the time paid up to
                    again, state = log.settle_with_state(*key, after=after, upto=upto, now=now,
                                                         fallback_mark=fallback)  # fmt: skip
                    paid_to = got.settled[-1].ts if got.settled else after
                    assert again == got and state == log.quiet_state(*key, paid_to)
                    paid += len(got.settled)
                    waiting += got.waiting is not None
                    missing += len(got.missing)
                    for s in times[:3]:
                        assert log.resolve(*key, s, now, fallback) == _resolve(
                            log, log._known_series(key), *key, s, now, fallback
                        )
            log.forget_before(v.at - rng.choice([H, 8 * H, 30 * H]))
    assert paid > 2000 and waiting > 100 and missing > 20
