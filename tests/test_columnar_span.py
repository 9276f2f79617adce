"""The replay's pre-checks of a Parquet file read only what they need: `time_span`
(the progress bar's ends) the first and last row groups' `ts` and `market`, and
`has_observations` (is there anything to replay) a small batch at a time. Each
gives exactly what the whole-file reading it replaced gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.market import Observation, has_observations, iter_parquet, time_span, write_columnar

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

T0 = 1719791940000
PERP = {"ts": T0, "exchange": "binance", "coin": "SOL", "market": "perp",
        "funding_rate": 0.0001, "funding_interval_h": 8.0, "mark": 150.0}  # fmt: skip
SETTLE = {"ts": T0, "exchange": "binance", "coin": "SOL", "market": "settlement",
          "funding_rate": 0.0001, "funding_interval_h": 8.0}  # fmt: skip
BAD = {**PERP, "mark": -5.0}


def whole_file_span(path: Path) -> tuple[int, int] | None:
    """The span as it was computed before: the whole `ts` and `market` columns."""
    table = pq.read_table(path, columns=["ts", "market"])
    ts = table.column("ts").to_numpy(zero_copy_only=False)
    market = table.column("market").cast(pa.string()).to_numpy(zero_copy_only=False)
    keep = np.flatnonzero(market != "settlement")
    if keep.size == 0:
        return None
    return int(ts[keep[0]]), int(ts[keep[-1]])


def whole_file_check(path: Path) -> bool:
    """The pre-check as it was: any valid observation among the file's records."""
    return any(isinstance(o, Observation) for _, o, _ in iter_parquet(path))


KINDS = st.sampled_from(["perp", "settlement", "bad"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(KINDS, min_size=1, max_size=40),
    group=st.integers(min_value=1, max_value=9),
)
def test_span_and_check_equal_the_whole_file_reading(
    tmp_path_factory: pytest.TempPathFactory, kinds: list[str], group: int
) -> None:
    # settlement rows at the ends, whole row groups of them, bad rows: the span's
    # ends are the first and last rows that are not settlement records
    rows = []
    for i, kind in enumerate(kinds):
        base = {"perp": PERP, "settlement": SETTLE, "bad": BAD}[kind]
        rows.append({**base, "ts": T0 + 60_000 * i})
    path = tmp_path_factory.mktemp("span") / "r.parquet"
    write_columnar(path, rows, row_group_rows=group)
    assert time_span(path) == whole_file_span(path)
    assert has_observations(path) == whole_file_check(path)


def test_a_first_observation_after_many_bad_rows_is_found(tmp_path: Path) -> None:
    rows = [{**BAD, "ts": T0 + i} for i in range(10_000)] + [{**PERP, "ts": T0 + 10_000}]
    path = tmp_path / "late.parquet"
    write_columnar(path, rows)
    assert has_observations(path) and whole_file_check(path)
    only_bad = tmp_path / "bad.parquet"
    write_columnar(only_bad, rows[:-1])
    assert not has_observations(only_bad) and not whole_file_check(only_bad)


def test_a_third_party_file_with_null_times_spans_its_valid_times(tmp_path: Path) -> None:
    rows = [{**PERP, "ts": None}, {**PERP, "ts": T0}, {**PERP, "ts": T0 + 60_000}, {**PERP, "ts": None}]
    path = tmp_path / "nulls.parquet"
    names = sorted({k for r in rows for k in r})
    pq.write_table(pa.table({k: [r.get(k) for r in rows] for k in names}), path)
    assert time_span(path) == (T0, T0 + 60_000)


def test_a_file_that_is_not_parquet_is_an_oserror(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text("not parquet\n")
    with pytest.raises(OSError, match="not a Parquet file"):
        time_span(path)
    with pytest.raises(OSError, match="not a Parquet file"):
        has_observations(path)


def test_a_replay_of_a_parquet_file_without_observations_is_refused(tmp_path: Path) -> None:
    rules = tmp_path / "r.rules"
    rules.write_text("rule r:\n    when funding(SOL, binance) > 1%\n    then hedge 100 USDT\n")
    path = tmp_path / "only-settlements.parquet"
    write_columnar(path, [SETTLE, {**BAD, "ts": T0 + 60_000}])
    db = tmp_path / "p.db"
    res = CliRunner().invoke(
        app, ["run", str(rules), "--paper", "--replay", str(path), "--db", str(db), "--no-watch"]
    )
    assert res.exit_code == 2, res.output
    assert res.output.strip() == f"error: {path}: no valid observations; nothing to replay"
    assert not db.exists()
    broken = tmp_path / "broken.parquet"
    broken.write_text(json.dumps(PERP) + "\n")
    res = CliRunner().invoke(
        app, ["run", str(rules), "--paper", "--replay", str(broken), "--db", str(db), "--no-watch"]
    )
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: {broken}: cannot read: not a Parquet file")
