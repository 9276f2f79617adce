"""`rulebook report` writes today's bytes: JSON, the summary, CSV and HTML.

The ledgers are frozen files (tests/fixtures/report-golden/, README there): the
README main job's ledger (real example data) and a synthetic one (open positions
marked later, three-leg positions, borrow, ties in time, payments of a position
not in the ledger). Their outputs were written by the report on main at e5b2868,
before reports were streamed; a streamed report must give the same bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from report_ledgers import report_outputs, unpack

GOLDEN = Path(__file__).parent / "fixtures" / "report-golden"
FILES = ("report.json", "report.txt", "trades.csv", "daily_equity.csv", "report.html")


@pytest.fixture(scope="module", params=["main-job", "synthetic"])
def outputs(request, tmp_path_factory) -> tuple[str, dict[str, str]]:
    work = tmp_path_factory.mktemp(request.param)
    db = unpack(GOLDEN / f"{request.param}.db.gz", work)
    return request.param, report_outputs(db, work)


@pytest.mark.parametrize("file", FILES)
def test_report_output_is_the_golden_one(outputs, file) -> None:
    name, got = outputs
    want = gzip.decompress((GOLDEN / name / f"{file}.gz").read_bytes()).decode("utf-8")
    assert got[file] == want, f"{name}/{file} differs from the golden output"
