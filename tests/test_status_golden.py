"""`rulebook status` prints today's bytes: --json, the text, --position N --json.

The ledgers are the frozen ones of tests/fixtures/report-golden/ (the README main
job's, and a synthetic one with open positions, three legs and borrow); the
outputs (tests/fixtures/status-golden/, README there) were written before
`status --json` moved to the report's streaming encoder, so the encoder must give
the same bytes.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pytest
from report_ledgers import STATUS_POSITIONS, status_outputs, unpack
from typer.testing import CliRunner

from rulebook.cli import app

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


def test_status_json_writes_no_non_finite_number(tmp_path) -> None:
    """A ledger someone edited by hand (or an old one) may hold an infinite amount:
    --json writes it as null, in the statistics and in a position's row, its legs
    and its payments, and the output parses as strict JSON."""
    db = unpack(FIXTURES / "report-golden" / "synthetic.db.gz", tmp_path)
    con = sqlite3.connect(db)
    with con:
        con.execute("update positions set pnl_price = 1e999 where id = 3")
        con.execute("update funding_payments set rate = -1e999"
                    " where rowid = (select min(rowid) from funding_payments where position_id = 3)")
        legs = json.loads(con.execute("select legs from positions where id = 58").fetchone()[0])
        legs[0]["entry_price"] = "INF"
        con.execute("update positions set legs = ? where id = 58",
                    (json.dumps(legs).replace('"INF"', "1e999"),))
    con.close()
    res = CliRunner().invoke(app, ["status", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON")

    data = json.loads(res.stdout, parse_constant=refuse)
    rows = {p["id"]: p for p in data["positions"]}
    assert rows[3]["pnl_price"] is None
    assert rows[3]["funding_payments"][0]["rate"] is None
    assert rows[58]["legs"][0]["entry_price"] is None
    assert data["stats"]["price"] is None  # the sum over an infinite price part
    assert len(rows) == 60
