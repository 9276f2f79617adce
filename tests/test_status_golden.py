"""`rulebook status` prints today's bytes: --json, the text, --position N --json.

The ledgers are the frozen ones of tests/fixtures/report-golden/ (the README main
job's, and a synthetic one with open positions, three legs and borrow); the
outputs (tests/fixtures/status-golden/, README there) were written before
`status --json` moved to the report's streaming encoder, so the encoder must give
the same bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from report_ledgers import STATUS_POSITIONS, status_outputs, unpack

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "status-golden"


@pytest.fixture(scope="module", params=sorted(STATUS_POSITIONS))
def outputs(request, tmp_path_factory) -> tuple[str, dict[str, str]]:
    work = tmp_path_factory.mktemp(request.param)
    db = unpack(FIXTURES / "report-golden" / f"{request.param}.db.gz", work)
    return request.param, status_outputs(db, STATUS_POSITIONS[request.param])


def test_status_output_is_the_golden_one(outputs) -> None:
    name, got = outputs
    files = sorted(p.name.removesuffix(".gz") for p in (GOLDEN / name).glob("*.gz"))
    assert sorted(got) == files
    for file in files:
        want = gzip.decompress((GOLDEN / name / f"{file}.gz").read_bytes()).decode("utf-8")
        assert got[file] == want, f"{name}/{file} differs from the golden output"
