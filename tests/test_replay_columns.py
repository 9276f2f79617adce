"""A JSONL replay's column views are the views of a line-by-line replay, view for view.

`ReplaySource` turns a JSONL recording's lines straight into columns
(`_replay._ReplayState`): a piece of the file whose lines all decode, with
good coins, no crossed book and observations in time order, goes in at once
(`piece`); any other piece line by line (`line`, `late`). Both are held here
to the replay as first written (`_oracle`: `iter_jsonl`'s records kept by
key, an observation view per distinct time), on every figure a view gives:
the time, the observations in row order, the columns (names, numbers bit for
bit), the settlement records, and the problems reported, with their line
numbers, wherever the pieces happen to be cut.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebook.market import (
    LineError,
    Observation,
    ReplaySource,
    Settlement,
    SnapshotView,
    _model,
    _readahead,
)
from rulebook.market._jsonl import iter_jsonl
from rulebook.market._view import NUMBER_FIELDS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
T0 = 1_753_112_400_000


def _oracle(path: Path, limit: int) -> tuple[list[SnapshotView], list[LineError]]:
    """The JSONL replay as first written: one record at a time, observations by key."""
    errors: list[LineError] = []
    views: list[SnapshotView] = []
    state: dict[tuple[str, str, str], Observation] = {}
    current: int | None = None
    pending: list[Settlement] = []

    def due(at: int) -> list[Settlement]:
        nonlocal pending
        now = [s for s in pending if s.ts <= at]
        pending = [s for s in pending if s.ts > at]
        return now

    for n, obs, err in iter_jsonl(path, max_line_bytes=limit):
        if err is not None:
            errors.append(err)
            continue
        assert obs is not None
        if isinstance(obs, Settlement):
            pending.append(obs)
            continue
        if current is not None and obs.ts > current:
            views.append(SnapshotView(current, state, settlements=due(current), recorded=True))
            current = obs.ts
        elif current is None:
            current = obs.ts
        elif obs.ts < current:
            errors.append(
                LineError(
                    str(path),
                    n,
                    f"out of time order: ts {obs.ts} after {current}; "
                    "applied to later snapshots only",
                    "warning",
                )
            )
            held = state.get(obs.key)
            if held is not None and held.ts > obs.ts:
                continue
        state[obs.key] = obs
    if current is not None:
        views.append(SnapshotView(current, state, settlements=due(current), recorded=True))
    return views, errors


def _names(cols: object) -> list[tuple[object, ...]]:
    """Each row's strings by name (codes may differ: categories are the reader's)."""
    c: object = cols
    ex, co, mk = c.exchanges, c.coins, c.markets  # type: ignore[attr-defined]
    symbols = c.symbols  # type: ignore[attr-defined]
    return [
        (ex[e], co[k], mk[m], None if s < 0 else symbols[s], t)
        for e, k, m, s, t in zip(
            c.exchange.tolist(), c.coin.tolist(), c.market.tolist(),  # type: ignore[attr-defined]
            c.symbol.tolist(), c.ts.tolist(), strict=True,  # type: ignore[attr-defined]
        )
    ]  # fmt: skip


def _bits(a: np.ndarray) -> np.ndarray:
    """A float array's bits, every NaN alike."""
    out = np.where(np.isnan(a), np.nan, a)
    return out.view(np.int64)


def _same_views(got: list[SnapshotView], want: list[SnapshotView]) -> None:
    assert [v.at for v in got] == [v.at for v in want]
    for x, y in zip(got, want, strict=True):
        assert x.held() is None  # a column view, as over Parquet
        assert x.recorded and y.recorded and len(x) == len(y)
        assert x.settlements == y.settlements
        assert x.observations() == y.observations()
        assert [type(o) for o in x.observations()] == [type(o) for o in y.observations()]
        assert x.keys() == y.keys()
        a, b = x.columns(), y.columns()
        assert a.at == b.at and _names(a) == _names(b)
        assert a.ts.dtype == np.int64 and a.exchange.dtype == np.int16
        assert a.coin.dtype == np.int32 and a.market.dtype == np.int8
        for name in NUMBER_FIELDS:
            u, w = getattr(a, name), getattr(b, name)
            assert u.dtype == np.float64 and np.array_equal(_bits(u), _bits(w)), name


def through_frames(path: Path, limit: int, by_piece: bool = True) -> tuple[
    list[SnapshotView], ReplaySource
]:  # fmt: skip
    """The replay as a worker process sends it (`_readahead.serve`), read back as the
    reading process does (`_readahead.frames`), through memory instead of a pipe."""
    out = io.BytesIO()
    assert _readahead.serve(str(path), out, limit, by_piece) == 0
    out.seek(0)
    source = ReplaySource(path)
    received = _readahead.frames(source, out)
    views = []
    while True:
        try:
            views.append(next(received))
        except StopIteration as stop:
            assert stop.value is None  # the frames end with the replay's end
            return views, source


def _check(path: Path, limit: int = 64 * 1024) -> None:
    """The replay here, by runs and line by line, and as read ahead (its frames) give the
    views and problems of the replay as first written."""
    want, want_errors = _oracle(path, limit)
    for by_piece, framed in ((True, False), (False, False), (True, True)):
        if framed:
            got, source = through_frames(path, limit, by_piece)
        else:
            source = ReplaySource(path, read_ahead=False)
            got = list(source._views(by_piece=by_piece, limit=limit))
        _same_views(got, want)
        assert source.errors == want_errors
        assert source.counts == {
            "error": sum(e.severity == "error" for e in want_errors),
            "warning": sum(e.severity == "warning" for e in want_errors),
        }


def test_the_example_recording_replays_to_the_views_of_the_first_replay() -> None:
    _check(EXAMPLE)  # a third of its lines are settlement records
    _check(EXAMPLE, limit=4096)


def _line(ts: int, exchange: str, coin: str, market: str, price: float, extra: str) -> str:
    row: dict[str, object] = {"ts": ts, "exchange": exchange, "coin": coin, "market": market}
    if market == "perp":
        row |= {"funding_rate": 0.0001, "funding_interval_h": 8, "mark": price}
        if extra == "full":
            row |= {"next_funding_ts": ts + 3_600_000, "index": price, "bid": price - 1,
                    "ask": price + 1, "volume_24h": 1e8, "taker_fee": 0.0004}  # fmt: skip
    elif market == "spot":
        row |= {"bid": price, "ask": price + 1}
        if extra == "full":
            row |= {"volume_24h": 5, "taker_fee": 0.001}
    elif market == "borrow":
        row |= {"borrow_rate_daily": 0.0003}
    else:  # a settlement record
        row |= {"funding_rate": 0.0001, "funding_interval_h": 8, "mark": price}
    if extra == "symbol":
        row["symbol"] = f"{coin}/USDT"
    elif extra == "null" and market != "settlement":
        row["index" if market == "perp" else "taker_fee"] = None  # read as absent
    elif extra == "unknown":
        row["venue_note"] = "x"  # an unknown key: a warning, the line is kept
    elif extra == "crossed" and market in ("perp", "spot"):
        row |= {"bid": price + 2, "ask": price}  # the line is refused
    elif extra == "bad coin":
        row["coin"] = coin.lower()  # refused
    elif extra == "stray":  # a field another market's line carries: refused
        row["borrow_rate_daily" if market != "borrow" else "bid"] = 0.001
    elif extra == "no rate" and market in ("borrow", "settlement"):
        del row["borrow_rate_daily" if market == "borrow" else "funding_rate"]  # refused
    elif extra == "twice":  # a key twice: the later value
        return json.dumps(row)[:-1] + f', "ts": {ts + 1}' + "}"
    return json.dumps(row)


BAD = ["not json", "", "   ", '{"ts": 1}', "[1]", '{"ts": 1753112400000}{}', "\x00"]


@st.composite
def recordings(draw: st.DrawFn) -> list[str]:
    lines = []
    ts = T0
    for _ in range(draw(st.integers(1, 90))):
        step = draw(st.sampled_from([0, 0, 0, 60_000, 3_600_000, -60_000, -3_600_000]))
        ts += step
        kind = draw(st.sampled_from(["perp", "spot", "borrow", "perp", "settlement", "bad"]))
        if kind == "bad":
            lines.append(draw(st.sampled_from(BAD)))
            continue
        exchange = draw(st.sampled_from(["binance", "okx", "bybit"]))
        coin = draw(st.sampled_from(["BTC", "SOL", "ETH"]))
        price = draw(st.floats(1.0, 1e5))
        extra = draw(
            st.sampled_from(
                [
                    "",
                    "",
                    "",
                    "full",
                    "symbol",
                    "null",
                    "unknown",
                    "crossed",
                    "bad coin",
                    "stray",
                    "no rate",
                    "twice",
                ]
            )  # fmt: skip
        )
        lines.append(_line(ts, exchange, coin, kind, price, extra))
    return lines


@settings(max_examples=200, deadline=None)
@given(recordings(), st.integers(min_value=200, max_value=3000))
def test_any_recording_cut_anywhere_gives_the_views_of_the_first_replay(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], limit: int
) -> None:
    path = tmp_path_factory.mktemp("replay") / "r.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _check(path, limit=limit)


def _clean(path: Path, hours: int = 48) -> None:
    path.write_text(
        "".join(
            _line(T0 + h * 3_600_000, ex, coin, m, 100.0 + h, "full" if h % 2 else "") + "\n"
            for h in range(hours)
            for ex in ("binance", "okx")
            for coin in ("BTC", "SOL")
            for m in ("perp", "spot", "borrow", *(("settlement",) if h % 8 == 0 else ()))
        ),
        encoding="utf-8",
    )


def test_a_clean_recording_takes_the_piece_path(tmp_path: Path, monkeypatch) -> None:
    """The hourly lines of a recording in order, settlement records among them: every
    piece goes in at once, none line by line."""
    path = tmp_path / "clean.jsonl"
    _clean(path)
    from rulebook.market import _replay

    def line_by_line(*args: object) -> object:
        raise AssertionError("a clean piece went line by line")

    monkeypatch.setattr(_replay._ReplayState, "line", line_by_line)
    views = list(ReplaySource(path)._views(limit=2048))
    assert [v.at for v in views] == [T0 + h * 3_600_000 for h in range(48)]
    assert all(len(v) == 12 for v in views)
    assert sum(len(v.settlements) for v in views) == 6 * 4
    monkeypatch.undo()
    _check(path, limit=2048)


def test_a_line_reads_what_the_observation_classes_read() -> None:
    """`_model.Line` (the piece path's decode) has every field of a line in line order,
    with the types and bounds of the record classes: a line decodes to one when it
    decodes to an observation or a settlement record (a null aside, which only the
    records read), with the same values, NaN for None."""
    assert _model.Line.__struct_fields__ == _model.FIELD_ORDER
    decode_line = msgspec.json.Decoder(_model.Line).decode
    decode_record = msgspec.json.Decoder(_model.AnyObservation | Settlement).decode
    texts = EXAMPLE.read_bytes().splitlines()[:3000]
    texts += [t.replace(b'"ts": 17', b'"ts": 07') for t in texts[:50]]  # not JSON
    texts += [t.replace(b'"mark": ', b'"mark": -') for t in texts[:50]]  # out of bounds
    for text in texts:
        try:
            o = decode_record(text)
        except msgspec.DecodeError:
            with pytest.raises(msgspec.DecodeError):
                decode_line(text)
            continue
        r = decode_line(text)
        assert r.market == o.market
        for name in _model.FIELD_ORDER:
            v, w = getattr(o, name, None), getattr(r, name)
            if v is None and name != "symbol":
                assert w != w or (name == "next_funding_ts" and w == _model.NO_NEXT_FUNDING)
            else:
                assert v == w and type(v) is type(w), name
    with pytest.raises(msgspec.ValidationError):  # a null: the general path reads it
        decode_line(b'{"ts": 1753112400000, "exchange": "okx", "coin": "BTC", "market": "perp",'
                    b' "mark": null}')  # fmt: skip


def _pieces_of(path: Path) -> Iterator[object]:
    from rulebook.market._jsonl import LinePieces

    yield from LinePieces(path)


def test_a_piece_with_a_crossed_book_or_a_bad_coin_is_read_line_by_line(tmp_path: Path) -> None:
    """What the decode does not check, the piece path checks before it changes
    anything; the general path then says which line is bad."""
    cases = (
        ("crossed", "crossed book"),
        ("bad coin", "must be upper-case"),
        ("stray", "borrow_rate_daily belongs to a borrow observation"),
    )
    for extra, words in cases:
        path = tmp_path / f"{extra}.jsonl"
        _clean(path, hours=4)
        lines = path.read_text().splitlines()
        lines[7] = _line(T0, "binance", "BTC", "spot", 100.0, extra)
        path.write_text("\n".join(lines) + "\n")
        assert all(not isinstance(p, list) for p in _pieces_of(path))  # every line decodes
        source = ReplaySource(path)
        views = list(source)
        assert [(e.line, words in e.message) for e in source.errors] == [(8, True)]
        assert len(views) == 4
        _check(path)


def test_runs_cut_into_chunks_give_the_same_views(monkeypatch) -> None:
    """A run's lines are turned into columns a chunk at a time (fewer tuples alive than
    the garbage collector's first threshold); any chunk size gives the same views."""
    from rulebook.market import _replay

    for chunk in (1, 3, 50):
        monkeypatch.setattr(_replay, "_CHUNK", chunk)
        _check(EXAMPLE, limit=4096)


def test_a_views_codes_are_read_only_and_shared_while_the_markets_are_the_same(
    tmp_path: Path,
) -> None:
    """The guard, the engine and the settling log keep their work per code arrays that
    cannot change: a replay's views hand them the same read-only arrays and category
    tuples while no market is added, as a Parquet replay's do."""
    path = tmp_path / "grows.jsonl"
    markets = [("binance", "BTC", "perp")] * 2 + [("okx", "SOL", "spot")] * 3
    path.write_text(
        "".join(
            _line(T0 + h * 3_600_000, ex, coin, m, 100.0, "") + "\n"
            for h in range(5)
            for ex, coin, m in dict.fromkeys(markets[: h + 1])
        )
    )
    for views in (list(ReplaySource(path)), through_frames(path, 64 * 1024)[0]):
        _shared_while_the_same(views)
    _check(path)


def _shared_while_the_same(views: list[SnapshotView]) -> None:
    assert [len(v) for v in views] == [1, 1, 2, 2, 2]
    for a, b in pairwise(views):
        x, y = a.columns(), b.columns()
        for name in ("exchange", "coin", "market"):
            assert not getattr(x, name).flags.writeable
        same = len(x) == len(y)
        assert (x.exchange is y.exchange and x.coin is y.coin and x.market is y.market) == same
        assert (x.coins is y.coins) == same
