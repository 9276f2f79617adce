"""`rulebook convert`: JSON Lines (and .jsonl.gz) to Parquet and back, byte for byte;
bad lines reported with their numbers and skipped; nothing overwritten without --force."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app
from rulebook.market import Observation, Settlement, convert, iter_jsonl, iter_parquet

pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
EXAMPLE_GZ = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024-previous.jsonl.gz"
EVERY_FIELD = Path(__file__).parent / "fixtures" / "columnar" / "every-field.jsonl"


def run(*args: str) -> object:
    return CliRunner().invoke(app, ["convert", *args])


@pytest.mark.parametrize("source", [EXAMPLE, EVERY_FIELD], ids=["example", "every-field"])
def test_jsonl_to_parquet_to_jsonl_is_byte_identical(source: Path, tmp_path: Path) -> None:
    pq, back = tmp_path / "r.parquet", tmp_path / "back.jsonl"
    res = run(str(source), str(pq))
    assert res.exit_code == 0, res.output
    res = run(str(pq), str(back))
    assert res.exit_code == 0, res.output
    assert back.read_bytes() == source.read_bytes()


def test_a_gzip_recording_round_trips_to_the_same_lines(tmp_path: Path) -> None:
    pq, back = tmp_path / "r.parquet", tmp_path / "back.jsonl.gz"
    assert convert(EXAMPLE_GZ, pq).rows == convert(pq, back).rows
    assert gzip.decompress(back.read_bytes()) == gzip.decompress(EXAMPLE_GZ.read_bytes())


def test_every_record_survives_settlements_and_unknown_keys_included(tmp_path: Path) -> None:
    pq = tmp_path / "r.parquet"
    result = convert(EVERY_FIELD, pq)
    assert (result.rows, result.settlements, result.skipped) == (11, 2, 0)
    assert [str(p) for p in result.problems] == [
        f"{EVERY_FIELD}:9: warning: unknown field 'venue_note' kept (reported once per file)"
    ]
    from_jsonl = [r for _, r, _ in iter_jsonl(EVERY_FIELD) if r is not None]
    from_parquet = [r for _, r, _ in iter_parquet(pq) if r is not None]
    assert from_parquet == from_jsonl  # the models, field by field (None where absent)
    assert sum(isinstance(r, Settlement) for r in from_parquet) == 2
    assert sum(isinstance(r, Observation) for r in from_parquet) == 9


def test_bad_lines_are_reported_with_their_numbers_and_skipped(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    good = EVERY_FIELD.read_text().splitlines()
    src.write_text(
        "\n".join([good[0], "not json", good[1], '{"ts": 1719791940000, "exchange": "binance", '
                   '"coin": "SOL", "market": "perp", "mark": -1}', "[1, 2]", good[2]]) + "\n"
    )  # fmt: skip
    pq = tmp_path / "out.parquet"
    res = run(str(src), str(pq))
    assert res.exit_code == 0, res.output
    assert f"{src}:2: error: not valid JSON" in res.output
    assert f"{src}:4: error: mark: price must be positive, got -1.0" in res.output
    assert f"{src}:5: error: expected a JSON object, got list" in res.output
    assert "wrote 3 records (0 settlement records)" in res.output
    assert "skipped 3 invalid" in res.output
    assert [n for n, r, _ in iter_parquet(pq) if r is not None] == [1, 2, 3]


def test_an_existing_output_is_kept_without_force(tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    out.write_bytes(b"precious")
    res = run(str(EVERY_FIELD), str(out))
    assert res.exit_code == 2
    assert "exists; give --force" in res.output
    assert out.read_bytes() == b"precious"
    res = run(str(EVERY_FIELD), str(out), "--force")
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:4] == b"PAR1"


def test_a_file_with_no_valid_line_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text("nope\n")
    res = run(str(src), str(tmp_path / "out.parquet"))
    assert res.exit_code == 1
    assert "no valid record; nothing written" in res.output
    assert list(tmp_path.iterdir()) == [src]  # no output, no temporary left


def test_same_format_both_sides_or_a_missing_source_is_one_line(tmp_path: Path) -> None:
    res = run(str(EVERY_FIELD), str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2 and "both JSON Lines" in res.output
    res = run(str(tmp_path / "missing.jsonl"), str(tmp_path / "x.parquet"))
    assert res.exit_code == 2 and "no such file" in res.output
    not_parquet = tmp_path / "fake.parquet"
    not_parquet.write_text("hello")
    res = run(str(not_parquet), str(tmp_path / "x.jsonl"))
    assert res.exit_code == 1 and "not a Parquet file" in res.output
    assert "Traceback" not in res.output


def test_without_pyarrow_the_error_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ModuleNotFoundError
    res = run(str(EVERY_FIELD), str(tmp_path / "x.parquet"))
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"error: {EVERY_FIELD}: Parquet files need pyarrow: pip install 'rulebook[parquet]'"
    ]


PROBE = """
import json, sys
sys.argv = ["rulebook", *json.loads(sys.argv[1])]
from rulebook.cli import main
try:
    main()
except SystemExit:
    pass
print("PYARROW=" + str("pyarrow" in sys.modules), file=sys.stderr)
"""


def _loads_pyarrow(*args: str) -> bool:
    import json
    import subprocess

    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(args))], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return "PYARROW=True" in done.stderr


def test_pyarrow_is_loaded_only_for_a_parquet_file(tmp_path: Path) -> None:
    assert not _loads_pyarrow("--help")
    assert not _loads_pyarrow("convert", "--help")
    jsonl = ["dry-run", "strategies/", "--snapshot", str(EVERY_FIELD), "--json"]
    assert not _loads_pyarrow(*jsonl)
    pq = tmp_path / "e.parquet"
    convert(EVERY_FIELD, pq)
    assert _loads_pyarrow("dry-run", "strategies/", "--snapshot", str(pq), "--json")
