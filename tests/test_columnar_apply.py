"""The columnar reader's per-cycle state: a cycle's rows replace what their slots hold,
the last row of a key winning (`_State.apply`). Consecutive rows onto consecutive
slots (every cycle of a file rulebook wrote) are copied as slices (`_apply_run`);
any other cycle is gathered and scattered. On random batches and every shape of
cycle (consecutive, with gaps, out of slot order, repeated keys, one row), the state
is what applying the rows one by one, in file order, gives: every array, bit for bit.
And a replay whose batches are observations only, in time order, applies each
cycle's rows as they are: the views equal those of the JSONL replay of the same
rows, with batches of each kind in one file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from rulebook.market import ReplaySource, write_columnar
from rulebook.market._columnar import FLOAT_FIELDS, _Batch, _State

pytest.importorskip("pyarrow")


def _batch(rng: random.Random, n: int) -> _Batch:
    def floats() -> np.ndarray:
        a = np.array([rng.uniform(-1, 1) for _ in range(n)])
        a[[i for i in range(n) if rng.random() < 0.2]] = np.nan
        return a

    return _Batch(
        first_row=1,
        ts=np.array([rng.randrange(10**12, 2 * 10**12) for _ in range(n)], dtype=np.int64),
        ts_null=np.zeros(n, dtype=bool),
        exchange=np.zeros(n, dtype=np.int16),
        coin=np.zeros(n, dtype=np.int32),
        market=np.zeros(n, dtype=np.int8),
        symbol=np.array([rng.randrange(-1, 5) for _ in range(n)], dtype=np.int32),
        symbol_bad=np.zeros(n, dtype=bool),
        next_funding_ts=floats(),
        next_null=np.zeros(n, dtype=bool),
        floats={name: floats() for name in FLOAT_FIELDS},
        nulls={name: np.zeros(n, dtype=bool) for name in FLOAT_FIELDS},
        ints=np.zeros(n, dtype=np.uint16),
        extra={},
    )


def _state(size: int) -> _State:
    st = _State()
    st._grow(size)
    st.size = size
    return st


def _arrays(st: _State) -> list[bytes]:
    return [a.tobytes() for a in (st.ts, st.symbol, st.next_funding_ts, *st.floats.values())]


def _cycle(rng: random.Random, shape: str, n_rows: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    if shape == "consecutive":  # the fast path
        k = rng.randrange(2, min(n_rows, size) + 1)
        r0, s0 = rng.randrange(n_rows - k + 1), rng.randrange(size - k + 1)
        return np.arange(r0, r0 + k), np.arange(s0, s0 + k)
    k = rng.randrange(1, min(n_rows, size) + 1)
    rows = np.array(sorted(rng.sample(range(n_rows), k)))
    if shape == "gaps":
        slots = np.array(sorted(rng.sample(range(size), k)))
    elif shape == "shuffled":
        slots = np.array(rng.sample(range(size), k))
    else:  # repeated keys: the later row of a slot wins
        slots = np.array([rng.randrange(size) for _ in range(k)])
    return rows, slots


@pytest.mark.parametrize("seed", range(60))
def test_apply_gives_what_applying_the_rows_one_by_one_gives(seed: int) -> None:
    rng = random.Random(seed)
    n_rows, size = rng.randrange(2, 40), rng.randrange(2, 40)
    b = _batch(rng, n_rows)
    got, want = _state(size), _state(size)
    for _ in range(6):
        shape = rng.choice(["consecutive", "consecutive", "gaps", "shuffled", "repeated"])
        rows, slots = _cycle(rng, shape, n_rows, size)
        got.apply(b, rows, slots)
        for r, s in zip(rows.tolist(), slots.tolist(), strict=True):  # the reference
            want.ts[s] = b.ts[r]
            want.symbol[s] = b.symbol[r]
            want.next_funding_ts[s] = b.next_funding_ts[r]
            for name in FLOAT_FIELDS:
                want.floats[name][s] = b.floats[name][r]
        assert _arrays(got) == _arrays(want), shape


def test_the_consecutive_cycles_take_the_slice_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: consecutive rows onto consecutive slots go through `_apply_run`, and
    nothing else does."""
    calls: list[int] = []
    real = _State._apply_run

    def counting(self: _State, b: _Batch, r0: int, s0: int, k: int) -> None:
        calls.append(k)
        real(self, b, r0, s0, k)

    monkeypatch.setattr(_State, "_apply_run", counting)
    rng = random.Random(1)
    b = _batch(rng, 10)
    st = _state(10)
    st.apply(b, np.arange(2, 8), np.arange(0, 6))
    assert calls == [6]
    st.apply(b, np.array([1, 2, 4]), np.array([3, 4, 5]))  # a gap in the rows
    st.apply(b, np.array([1, 2, 3]), np.array([5, 4, 3]))  # slots falling
    st.apply(b, np.array([1, 2, 3]), np.array([3, 3, 5]))  # a key twice
    assert calls == [6]


def test_batches_of_plain_observations_and_of_late_rows_replay_as_in_jsonl(tmp_path: Path) -> None:
    t0 = 1_704_067_200_000
    rng = random.Random(3)
    keys = [(e, c) for e in ("binance", "okx", "bybit") for c in ("BTC", "ETH", "SOL")]
    rows = []
    for k in range(40):
        for e, c in keys:
            rows.append({"ts": t0 + 60_000 * k, "exchange": e, "coin": c, "market": "perp",
                         "funding_rate": 0.0001, "funding_interval_h": 8.0,
                         "mark": round(rng.uniform(90, 110), 6)})  # fmt: skip
        if k in (12, 27):  # a late row and a settlement record: those batches go the long way
            rows.append({**rows[-5], "ts": t0 + 60_000 * (k - 1) + 1, "mark": 100.0})
            rows.append({"ts": t0 + 60_000 * k, "exchange": "okx", "coin": "BTC",
                         "market": "settlement", "funding_rate": 0.0001,
                         "funding_interval_h": 8.0})  # fmt: skip
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq = tmp_path / "r.parquet"
    write_columnar(pq, rows, row_group_rows=45)
    a, b = list(ReplaySource(jsonl)), list(ReplaySource(pq))
    assert len(a) == 40 and [v.at for v in a] == [v.at for v in b]
    for x, y in zip(a, b, strict=True):
        assert x.observations() == y.observations()
        assert x.settlements == y.settlements
    assert sum(len(v.settlements) for v in b) == 2
