"""A JSONL replay applies a clean piece of the file at once: the same views as line by line.

`ReplaySource` reads a JSONL recording a piece at a time (`decoded_pieces`); a
piece whose lines are all valid observations in time order, none older than
the current view, updates the state in C and yields a view at each change of
time. Any other piece (a bad line, a settlement record, a line out of time
order) goes line by line, the general path. Both must give the same views (at,
observations in the same order, settlements), the same problems and counts,
wherever the pieces happen to be cut.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rulebook.market import ReplaySource

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
T0 = 1_753_112_400_000


def _both(path: Path, limit: int = 64 * 1024) -> None:
    fast, general = ReplaySource(path), ReplaySource(path)
    a = list(fast._views(by_piece=True, limit=limit))
    b = list(general._views(by_piece=False, limit=limit))
    assert [v.at for v in a] == [v.at for v in b]
    for x, y in zip(a, b, strict=True):
        assert x.observations() == y.observations()
        assert [o.key for o in x.observations()] == [o.key for o in y.observations()]
        assert x.settlements == y.settlements and x.recorded and y.recorded
    assert fast.errors == general.errors and fast.counts == general.counts


def test_the_example_recording_replays_to_the_same_views_both_ways() -> None:
    _both(EXAMPLE)  # a third of its lines are settlement records
    _both(EXAMPLE, limit=4096)


def _line(ts: int, exchange: str, coin: str, market: str, price: float) -> str:
    row: dict[str, object] = {"ts": ts, "exchange": exchange, "coin": coin, "market": market}
    if market == "perp":
        row |= {"funding_rate": 0.0001, "funding_interval_h": 8, "mark": price}
    elif market == "spot":
        row |= {"bid": price, "ask": price + 1}
    elif market == "borrow":
        row |= {"borrow_rate_daily": 0.0003}
    else:  # a settlement record
        row |= {"funding_rate": 0.0001, "funding_interval_h": 8, "mark": price}
    return json.dumps(row)


@st.composite
def recordings(draw: st.DrawFn) -> list[str]:
    lines = []
    ts = T0
    for _ in range(draw(st.integers(1, 80))):
        step = draw(st.sampled_from([0, 0, 0, 60_000, 3_600_000, -60_000]))  # mostly in order
        ts += step
        kind = draw(st.sampled_from(["perp", "spot", "borrow", "perp", "settlement", "bad"]))
        if kind == "bad":
            lines.append(draw(st.sampled_from(["not json", "", '{"ts": 1}', "[1]"])))
            continue
        exchange = draw(st.sampled_from(["binance", "okx", "bybit"]))
        coin = draw(st.sampled_from(["BTC", "SOL"]))
        price = draw(st.floats(1.0, 1e5))
        lines.append(_line(ts, exchange, coin, kind, price))
    return lines


@settings(max_examples=150, deadline=None)
@given(recordings(), st.integers(min_value=300, max_value=3000))
def test_any_recording_cut_anywhere_gives_the_views_of_the_general_path(
    tmp_path_factory, lines: list[str], limit: int
) -> None:
    path = tmp_path_factory.mktemp("replay") / "r.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _both(path, limit=limit)


def test_a_clean_recording_takes_the_piece_path(tmp_path: Path, monkeypatch) -> None:
    """The hourly lines of a recording in order: every piece is applied at once."""
    path = tmp_path / "clean.jsonl"
    path.write_text(
        "".join(
            _line(T0 + h * 3_600_000, ex, coin, m, 100.0 + h) + "\n"
            for h in range(48)
            for ex in ("binance", "okx")
            for coin in ("BTC", "SOL")
            for m in ("perp", "spot", "borrow")
        ),
        encoding="utf-8",
    )
    from rulebook.market import _replay

    def line_by_line(*args: object) -> object:  # what the general path hands a good piece to
        raise AssertionError("a clean piece went line by line")

    monkeypatch.setattr(_replay, "repeat", line_by_line)
    views = list(ReplaySource(path)._views(by_piece=True, limit=2048))
    assert [v.at for v in views] == [T0 + h * 3_600_000 for h in range(48)]
    assert all(len(v) == 12 for v in views)
    monkeypatch.undo()
    _both(path, limit=2048)
