"""A late line that replaces a market's figures at the time it already holds is judged.

A replay applies a line out of time order to later views when its time is not
older than what its market holds; at the same time, the later line wins. A
column view has no observation objects, so the price guard stamped its markets
by time alone, and such a line (binance at 1000 while three venues are at ~100)
went into the next views unjudged: marked, and paid funding on, at 1000. The
guard now stamps a column view's market by its time and the prices it judges.
Synthetic figures (three venues around 100, one bad late line).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rulebook.market import Observation, PriceGuard, ReplaySource, SnapshotView, convert

T0 = 1_753_112_400_000
H = 3_600_000


def _line(ts: int, ex: str, mark: float) -> str:
    return json.dumps(
        {
            "ts": ts, "exchange": ex, "coin": "BTC", "market": "perp",
            "funding_rate": 0.0001, "funding_interval_h": 8, "mark": mark,
        }
    )  # fmt: skip


def _recording(tmp_path: Path, late_mark: float) -> Path:
    lines = [_line(T0, e, 100.0) for e in ("binance", "okx", "bybit")]
    lines += [_line(T0 + H, e, 100.1) for e in ("binance", "okx", "bybit")]
    lines += [_line(T0 + 2 * H, e, 100.2) for e in ("okx", "bybit")]
    lines += [_line(T0 + H, "binance", late_mark)]  # late, at the time binance holds
    lines += [_line(T0 + 3 * H, e, 100.3) for e in ("okx", "bybit")]
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _source(tmp_path: Path, fmt: str, late_mark: float) -> Path:
    path = _recording(tmp_path, late_mark)
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
        out = tmp_path / "late.parquet"
        convert(path, out)
        return out
    return path


def _replayed(path: Path) -> list[tuple[float | None, list[str]]]:
    """binance's mark in each cycle's guarded view, and the cycle's rejections."""
    guard = PriceGuard()
    out = []
    for view in ReplaySource(path):
        checked, rejected = guard.check(view)
        out.append((checked.mark("binance", "BTC"), [r.text() for r in rejected]))
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_bad_late_line_at_the_held_time_is_rejected(tmp_path: Path, fmt: str) -> None:
    cycles = _replayed(_source(tmp_path, fmt, late_mark=1000.0))
    assert [m for m, _ in cycles] == [100.0, 100.1, 100.1, 100.1]
    assert cycles[2][1] == [
        "binance BTC perp: mark 1000 is 898% from the median 100.2 of 3 venues (band 25%); "
        "not used this cycle"
    ]
    # unchanged since, it stays replaced without a second rejection
    assert cycles[3][1] == []
    assert [r for _, r in cycles[:2]] == [[], []]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_plausible_late_line_at_the_held_time_is_used(tmp_path: Path, fmt: str) -> None:
    cycles = _replayed(_source(tmp_path, fmt, late_mark=100.15))
    assert cycles == [(100.0, []), (100.1, []), (100.15, []), (100.15, [])]


def _perp(ex: str, mark: float, ts: int) -> Observation:
    return Observation.checked(
        ts=ts, exchange=ex, coin="BTC", market="perp", funding_rate=0.0001,
        funding_interval_h=8, mark=mark, index=mark,
    )  # fmt: skip


@pytest.mark.parametrize("columnar", [False, True])
def test_both_view_kinds_judge_new_figures_at_an_unchanged_time(columnar: bool) -> None:
    """The same figures at the same time are the same observation (no new verdict);
    other figures at the same time are new, in a view of observations and a column
    view alike."""
    guard = PriceGuard()
    marks: list[float | None] = []
    texts: list[list[str]] = []
    for binance in (100.0, 100.0, 1000.0, 1000.0, 100.05):
        state = {
            (ex, "BTC", "perp"): _perp(ex, 100.0 + 0.01 * i, T0)
            for i, ex in enumerate(("okx", "bybit", "backpack"))
        }
        state[("binance", "BTC", "perp")] = _perp("binance", binance, T0)
        view = SnapshotView(T0, state, recorded=True)
        if columnar:
            view = SnapshotView.from_columns(view.columns())
        got, rejected = guard.check(view)
        marks.append(got.mark("binance", "BTC"))
        texts.append([r.text() for r in rejected])
    assert marks == [100.0, 100.0, 100.0, 100.0, 100.05]
    # the median of the four venues (binance too): (100.01 + 100.02) / 2
    assert texts[0] == texts[1] == texts[4] == []
    assert texts[2] == [
        "binance BTC perp: mark 1000 is 900% from the median 100.015 of 4 venues (band 25%); "
        "not used this cycle"
    ]
