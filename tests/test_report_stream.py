"""The streamed report (passes over a ledger) writes exactly what the in-memory one writes.

`build_report(read_ledger(...))` holds every record in lists; `ledger_report`
reads them in passes. Both must give the same JSON, CSV and HTML bytes, PNGs
included: on the golden ledgers, on synthetic ledgers of other shapes, and (through
`ListSource`, the same code over lists) on random runs from hypothesis, with
amounts that make any change in a sum's order show.
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_ledgers import build, unpack

from rulebook import _json
from rulebook.report import (
    EquityPoint,
    FillRecord,
    LegRecord,
    PaymentRecord,
    PositionRecord,
    Report,
    ReportInput,
    build_report,
    iter_json,
    ledger_report,
    read_ledger,
    render_html,
    stream_report,
    write_csv,
)
from rulebook.report._plots import BUCKETS, MAX_POINTS, reduce_series
from rulebook.report._stream import ExactSum, ListSource
from rulebook.report._streamed import indented
from rulebook.trading import LedgerReader

GOLDEN = Path(__file__).parent / "fixtures" / "report-golden"


def _ledgers(tmp: Path) -> list[Path]:
    out = [unpack(GOLDEN / "main-job.db.gz", tmp), unpack(GOLDEN / "synthetic.db.gz", tmp)]
    for i, shape in enumerate([
        {"positions": 3, "cycles": 5, "days": 1},  # only the open positions
        {"positions": 200, "cycles": 40, "days": 3, "seed": 11},
        {"positions": 90, "cycles": 600, "days": 60, "seed": 3},
    ]):  # fmt: skip
        out.append(build(tmp / f"shape{i}.db", **shape))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory) -> list[Path]:
    return _ledgers(tmp_path_factory.mktemp("ledgers"))


def _both(db: Path) -> tuple[dict[str, object], Report]:
    reader = LedgerReader.open(db)
    whole = build_report(read_ledger(reader, source="ledger x"))
    return whole, ledger_report(reader, source="ledger x")


def test_json_is_the_same_bytes(ledgers) -> None:
    for db in ledgers:
        whole, streamed = _both(db)
        with LedgerReader.open(db) as reader, reader.snapshot():
            text = "".join(iter_json(ledger_report(reader, source="ledger x")))
        assert text == _json.dumps(whole, indent=2), db.name
        assert streamed.to_dict() == whole, db.name


def test_csv_and_html_are_the_same_bytes_pngs_included(ledgers, tmp_path) -> None:
    for db in ledgers:
        whole, streamed = _both(db)
        a, b = tmp_path / db.stem / "whole", tmp_path / db.stem / "streamed"
        for pa, pb in zip(write_csv(whole, a), write_csv(streamed, b), strict=True):
            assert pa.read_bytes() == pb.read_bytes(), (db.name, pa.name)
        html = render_html(whole)
        assert render_html(streamed) == html, db.name
        assert len(re.findall(r"data:image/png;base64,", html)) == 4


def test_the_same_through_the_cli_as_in_memory(ledgers, tmp_path) -> None:
    from typer.testing import CliRunner

    from rulebook.cli import app

    db = ledgers[1]
    res = CliRunner().invoke(app, ["report", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    whole = build_report(read_ledger(LedgerReader.open(db), source=f"ledger {db}"))
    assert res.stdout == _json.dumps(whole, indent=2) + "\n"


# -- the same code over lists, on random runs --------------------------------------------

AMOUNT = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.1, 0.2, 0.3, 1e-17, -1e-17, 1e16, -1e16, 0.0]
)
TIME = st.integers(0, 40).map(lambda h: 1_700_000_000_000 + h * 3_600_000)


@st.composite
def runs(draw: st.DrawFn) -> ReportInput:
    n = draw(st.integers(0, 12))
    # unique ids (a ledger's primary key), not always in order
    order = draw(st.permutations(range(1, n + 1)))
    positions = []
    for i in range(n):
        opened = draw(TIME)
        hours = draw(st.one_of(st.none(), st.integers(0, 10)))
        closed = None if hours is None else opened + hours * 3_600_000
        legs = tuple(
            LegRecord(
                exchange=draw(st.sampled_from(["binance", "okx", "bybit"])),
                market=draw(st.sampled_from(["perp", "spot"])),
                side=draw(st.sampled_from(["long", "short"])),
                notional=draw(st.sampled_from([100.0, 250.5, 1e-3])) * draw(st.integers(-3, 3)),
                funding=draw(AMOUNT), fees=-abs(draw(AMOUNT)), price=draw(AMOUNT),
                borrow=-abs(draw(AMOUNT)),
            )
            for _ in range(draw(st.integers(1, 3)))
        )  # fmt: skip
        positions.append(
            PositionRecord(
                id=order[i],
                rule=draw(st.sampled_from(["a", "b", "é rule"])),
                coin=draw(st.sampled_from(["BTC", "ETH"])),
                bindings={"coin": "BTC"}, legs=legs, notional=100.0, opened_at=opened,
                closed_at=closed, close_reason=None if closed is None else "exit",
            )
        )  # fmt: skip
    ids = [p.id for p in positions] + [99]
    payments = [
        PaymentRecord(ts=draw(TIME), position_id=draw(st.sampled_from(ids)),
                      exchange=draw(st.sampled_from(["binance", "okx"])), rate=1e-4, mark=10.0,
                      size=1.0, amount=draw(AMOUNT), source=draw(st.sampled_from([None, "x"])))
        for _ in range(draw(st.integers(0, 15)))
    ]  # fmt: skip
    fills = [
        FillRecord(ts=draw(TIME), position_id=1, exchange="okx", market="perp", side="buy",
                   price=abs(draw(AMOUNT)), size=draw(st.sampled_from([1.0, 0.5, 3.0])),
                   fee=abs(draw(AMOUNT)))
        for _ in range(draw(st.integers(0, 10)))
    ]  # fmt: skip
    # equity in time order, sometimes two cycles at one time
    times = sorted(draw(st.lists(TIME, max_size=30)))
    equity = [EquityPoint(t, 1000.0 + draw(AMOUNT)) for t in times]
    return ReportInput(positions=positions, fills=fills, payments=payments, equity=equity,
                       initial_balance=draw(st.sampled_from([0.0, 1000.0, 60_000.0])),
                       leverage=draw(st.sampled_from([1.0, 3.0])))  # fmt: skip


@given(runs())
def test_streamed_over_lists_is_build_report(run: ReportInput) -> None:
    want = build_report(run, {"extra": [1, 2]})
    got = stream_report(ListSource(run), {"extra": [1, 2]})
    assert "".join(iter_json(got)) == _json.dumps(want, indent=2)


@given(st.lists(AMOUNT, max_size=60))
def test_exact_sum_is_fsum(values: list[float]) -> None:
    s = ExactSum()
    for v in values:
        s.add(v)
    assert s.value() == math.fsum(values)
    assert math.copysign(1.0, s.value()) == math.copysign(1.0, math.fsum(values))


# -- plots: whole up to MAX_POINTS, reduced beyond ----------------------------------------


def _rows(n: int) -> list[tuple[int, float]]:
    return [(1_700_000_000_000 + i * 60_000, math.sin(i / 37.0) * 100 + (i % 7)) for i in range(n)]


def test_a_short_series_is_drawn_whole() -> None:
    rows = _rows(MAX_POINTS)
    (s,) = reduce_series(lambda: iter(rows), 1)
    assert list(zip(s.ts, s.values, strict=True)) == rows


def test_a_long_series_keeps_each_columns_first_lowest_highest_and_last() -> None:
    rows = _rows(MAX_POINTS * 25)
    (s,) = reduce_series(lambda: iter(rows), 1)
    assert len(s.ts) <= 4 * BUCKETS and s.ts == sorted(s.ts)
    kept = dict(zip(s.ts, s.values, strict=True))
    first, span = rows[0][0], rows[-1][0] - rows[0][0]
    columns: dict[int, list[tuple[int, float]]] = {}
    for t, v in rows:
        columns.setdefault(min((t - first) * BUCKETS // span, BUCKETS - 1), []).append((t, v))
    for col in columns.values():
        for t, v in (col[0], col[-1], min(col, key=lambda x: x[1]), max(col, key=lambda x: x[1])):
            assert kept.get(t) == v
    assert max(s.values) == max(v for _, v in rows) and min(s.values) == min(v for _, v in rows)


def test_a_long_run_plots_reduced_and_its_figures_stay_whole(tmp_path) -> None:
    db = build(tmp_path / "long.db", positions=30, cycles=MAX_POINTS + 500, days=30)
    whole, streamed = _both(db)
    html = render_html(streamed)
    assert html.count("data:image/png;base64,") == 4
    # the printed text is the in-memory report's; only the PNGs differ (reduced series)
    strip = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")
    assert strip.sub("", html) == strip.sub("", render_html(whole))
    for png in strip.findall(html):
        assert base64.b64decode(png.split(",", 1)[1]).startswith(b"\x89PNG")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=25,
)  # fmt: skip


@given(JSON_VALUES, st.integers(0, 3))
def test_the_item_encoder_writes_json_dumps_bytes(value: object, level: int) -> None:
    want = json.dumps(value, indent=2, allow_nan=False).replace("\n", "\n" + "  " * level)
    assert indented(value, level) == want
