"""Issue 13 item 1: recordings decoded straight into checked records (msgspec).

The typed decode and the detailed checker must agree: every line gets the
message the pydantic models gave (a corpus of about 4,400 lines recorded before
the change), every record the same bytes, and a line the fast path accepts is
one the detailed checker accepts as the same record.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebook.market import Observation, Settlement, iter_jsonl
from rulebook.market._checks import LIMITS
from rulebook.market._jsonl import JsonObject, LineError, iter_objects
from rulebook.market._model import (
    OBSERVATION_FIELDS,
    AnyObservation,
    PerpObservation,
    SpotObservation,
    all_hold,
    holds,
    observation_from,
)
from rulebook.market._settlement import settlement_from

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "fixtures" / "line-checks" / "expected.jsonl.gz"
T0 = 1753112400000


def _corpus() -> list[dict]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as fh:
        return [json.loads(x) for x in fh]


def _said(path: Path) -> dict:
    got = list(iter_jsonl(path))
    return {
        "problems": [[e.severity, e.message] for _, _, e in got if e is not None],
        "record": next((r.to_json() for _, r, _ in got if r is not None), None),
        "kind": next((_kind(r) for _, r, _ in got if r is not None), None),
    }


def _kind(r: Observation | Settlement) -> str:
    return "Observation" if isinstance(r, Observation) else type(r).__name__


def test_every_line_gets_the_message_and_the_bytes_it_got_before(tmp_path: Path) -> None:
    rows = _corpus()
    assert len(rows) > 4000 and sum(r["record"] is not None for r in rows) > 400
    p = tmp_path / "l.jsonl"
    differ = []
    for row in rows:
        p.write_text(row["line"] + "\n", encoding="utf-8")
        said = _said(p)
        if said != {k: row[k] for k in ("problems", "record", "kind")}:
            differ.append((row["line"][:120], row["problems"], said["problems"]))
    assert differ == []


def test_the_whole_corpus_as_one_file_gives_the_same_line_numbers(tmp_path: Path) -> None:
    rows = _corpus()
    p = tmp_path / "all.jsonl"
    p.write_text("".join(r["line"] + "\n" for r in rows), encoding="utf-8")
    errors = [(n, e.message) for n, _, e in iter_jsonl(p) if e is not None and e.severity == "error"]
    expected = [
        (i, msg) for i, r in enumerate(rows, 1) for sev, msg in r["problems"] if sev == "error"
    ]
    assert errors == expected


def test_the_converters_reader_reports_and_accepts_what_iter_jsonl_does(tmp_path: Path) -> None:
    """One line reader: `iter_objects` (what `rulebook convert` reads JSONL through) gives
    every report of `iter_jsonl`, with the same line numbers and words (an unknown key is
    "kept" there rather than "ignored"), and for each valid line its JSON object as
    written, which is the same record."""
    rows = _corpus()
    p = tmp_path / "all.jsonl"
    p.write_text(
        "".join(r["line"] + "\n" for r in rows) + "\n  \n" + "x" * 70_000 + "\n", encoding="utf-8"
    )
    typed = list(iter_jsonl(p))
    objects = list(iter_objects(p, unknown="kept"))
    want = [(e.line, e.severity, e.message.replace(" ignored (", " kept (")) for _, _, e in typed if e]
    assert [(e.line, e.severity, e.message) for e in objects if isinstance(e, LineError)] == want
    assert any("longer than" in m for _, _, m in want) and any(s == "warning" for _, s, _ in want)
    good = [o for o in objects if isinstance(o, JsonObject)]
    assert [(o.line, o.record) for o in good] == [(n, r) for n, r, _ in typed if r is not None]
    lines = p.read_bytes().split(b"\n")
    assert all(o.raw == lines[o.line - 1] and o.data == json.loads(o.raw) for o in good)


def _fast(line: bytes) -> Observation | Settlement | None:
    """What the reader's fast path accepts: the typed decode, then `holds`."""
    try:
        record = msgspec.json.decode(line, type=AnyObservation | Settlement)
    except msgspec.ValidationError:
        return None
    return record if holds(record) and all_hold([record]) else None


def _detailed(line: bytes) -> Observation | Settlement | None:
    data = json.loads(line)
    if not isinstance(data, dict):
        return None
    make = settlement_from if data.get("market") == "settlement" else observation_from
    try:
        return make(data)
    except msgspec.ValidationError:
        return None


def test_what_the_typed_decode_accepts_the_detailed_checker_accepts_alike() -> None:
    accepted = 0
    for row in _corpus():
        line = row["line"].encode()
        fast = _fast(line)
        if fast is not None:
            accepted += 1
            assert _detailed(line) == fast, row["line"]
    assert accepted > 300


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**14), max_value=10**14),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1.0, max_value=1.0),
    st.sampled_from([1e-12, 1e12, 0.1, -0.1, 0.05, 1 / 60, 24.0, 1e15, T0, 10**13, 10**12]),
    st.sampled_from(["perp", "spot", "borrow", "settlement", "binance", "okx", "SOL", "sol", ""]),
    st.text(max_size=40),
)
_FIELDS = sorted(OBSERVATION_FIELDS)


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "ts": st.one_of(st.just(T0), _VALUES),
            "exchange": st.sampled_from(["binance", "bybit", "nope"]),
            "coin": st.sampled_from(["SOL", "BTC", "1000PEPE", "sol", "S" * 33]),
            "market": st.sampled_from(["perp", "spot", "borrow", "settlement", "PERP"]),
        },
        optional={name: _VALUES for name in _FIELDS if name not in ("ts", "exchange", "coin", "market")},
    )
)
def test_fast_and_detailed_agree_on_any_line(data: dict) -> None:
    line = json.dumps(data).encode()
    fast = _fast(line)
    if fast is not None:
        assert _detailed(line) == fast
    # and the reader's answer is the detailed checker's, whichever path it took
    assert _read_one(line) == _detailed(line)


def _read_one(line: bytes) -> Observation | Settlement | None:
    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl") as fh:
        fh.write(line + b"\n")
        fh.flush()
        return next((r for _, r, _ in iter_jsonl(fh.name) if r is not None), None)


# -- the reader's lines: pieces of max_line_bytes, never a line held whole ---------------


def _reference_lines(data: bytes, limit: int) -> list[tuple[int, bytes | None, int]]:
    """Line numbers, lines (None: too long) and sizes, by the rule of docs/limits.md."""
    bodies = data.split(b"\n")
    last = bodies.pop()  # after the final newline: b"", or a last line without one
    sized = [(b, len(b) + 1) for b in bodies] + ([(last, len(last))] if last else [])
    return [(n, b if len(b) <= limit else None, size) for n, (b, size) in enumerate(sized, 1)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=60),  # a good line padded to about this length
            st.sampled_from([b"", b"  ", b"{oops", b"x" * 70, b"y" * 200]),
        ),
        max_size=25,
    ),
    st.integers(min_value=40, max_value=90),
    st.booleans(),
)
def test_lines_across_pieces_are_numbered_and_bounded_as_before(
    tmp_path_factory: pytest.TempPathFactory, parts: list, limit: int, final_newline: bool
) -> None:
    good = b'{"ts":%d,"exchange":"okx","coin":"SOL","market":"spot"' % T0
    lines = [good + b"," + b'"symbol":"' + b"S" * p + b'"}' if isinstance(p, int) else p for p in parts]
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    path = tmp_path_factory.mktemp("pieces") / "s.jsonl"
    path.write_bytes(data)
    got = [(n, o is not None, e.message if e else None) for n, o, e in iter_jsonl(path, max_line_bytes=limit)]
    want = []
    for n, body, size in _reference_lines(data, limit):
        if body is None:
            want.append((n, False, f"line of {size:,} bytes is longer than {limit:,}; skipped"))
        elif not body.strip():
            continue
        else:
            ok = _detailed_or_none(body) is not None
            want.append((n, ok, None) if ok else (n, False, "*"))
    assert [(n, ok, m if m is None or "longer" in m else "*") for n, ok, m in got] == want


def _detailed_or_none(body: bytes) -> Observation | Settlement | None:
    try:
        return _detailed(body)
    except ValueError:
        return None


# -- building records in Python ---------------------------------------------------------


def test_checked_gives_what_the_decode_gives() -> None:
    o = Observation.checked(ts=T0, exchange="okx", coin="SOL", market="perp", funding_rate=0,
                            funding_interval_h=8, mark=100)  # fmt: skip
    assert o == msgspec.json.decode(o.to_json(), type=AnyObservation)
    assert type(o.funding_interval_h) is float and o.to_json().endswith('"mark":100.0}')
    assert Observation.checked(ts=float(T0), exchange="okx", coin="SOL", market="spot").ts == T0


def test_checked_refuses_with_the_line_message_and_unknown_fields_with_a_type_error() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"^mark: price must be positive, got 0.0$"):
        Observation.checked(ts=T0, exchange="okx", coin="SOL", market="perp", mark=0)
    with pytest.raises(msgspec.ValidationError, match="^line: crossed book"):
        Observation.checked(ts=T0, exchange="okx", coin="SOL", market="spot", bid=2.0, ask=1.0)
    with pytest.raises(TypeError, match="fundng_rate"):
        Observation.checked(ts=T0, exchange="okx", coin="SOL", market="perp", fundng_rate=0.1)
    with pytest.raises(msgspec.ValidationError, match="bid do"):
        Settlement.checked(ts=T0, exchange="okx", coin="SOL", funding_rate=0.0, bid=1.0)


def test_what_the_decode_cannot_check_the_reader_checks_per_piece(tmp_path: Path) -> None:
    crossed = SpotObservation(ts=T0, exchange="okx", coin="SOL", bid=2.0, ask=1.0)
    lower = SpotObservation(ts=T0, exchange="okx", coin="sol")
    good = SpotObservation(ts=T0, exchange="okx", coin="SOL", bid=1.0, ask=2.0)
    assert not holds(crossed) and not holds(lower) and holds(good)
    assert all_hold([good, good]) and not all_hold([good, crossed]) and not all_hold([lower])
    p = tmp_path / "s.jsonl"
    p.write_text("".join(o.to_json() + "\n" for o in [good, crossed, good, lower, good]))
    got = [(n, o is not None, e.message if e else None) for n, o, e in iter_jsonl(p)]
    assert got == [
        (1, True, None),
        (2, False, "line: crossed book: bid 2.0 > ask 1.0"),
        (3, True, None),
        (4, False, "coin: coin 'sol' must be upper-case letters and digits, like SOL or 1000PEPE"),
        (5, True, None),
    ]
    with pytest.raises(TypeError):  # a spot observation has no mark to carry
        SpotObservation(ts=T0, exchange="okx", coin="SOL", mark=1.0)  # type: ignore[call-arg]


def test_every_observation_reads_every_field_and_its_market() -> None:
    s = Observation.checked(ts=T0, exchange="okx", coin="SOL", market="spot", bid=1.0, ask=2.0)
    b = Observation.checked(ts=T0, exchange="okx", coin="SOL", market="borrow",
                            borrow_rate_daily=0.001)  # fmt: skip
    assert isinstance(s, Observation) and isinstance(s, SpotObservation)
    assert (s.market, s.mark, s.funding_rate, s.borrow_rate_daily) == ("spot", None, None, None)
    assert (b.market, b.bid, b.key) == ("borrow", None, ("okx", "SOL", "borrow"))
    assert s.to_json().startswith('{"ts":1753112400000,"exchange":"okx","coin":"SOL","market":"spot"')


_BARE = re.compile(r"(?<![\w.])((?:Perp|Spot|Borrow)?Observation|Settlement)\(")
#: the per-market classes, whose constructors check nothing
_MARKET_CLASSES = re.compile(r"\b(PerpObservation|SpotObservation|BorrowObservation)\b")
#: the one place allowed to build observations without the checks: a column-built
#: view's rows (`SnapshotView._make`), whose columns were checked when read
_TRUSTED = "rulebook/market/_view.py"


def test_nothing_builds_a_record_without_the_checks() -> None:
    """Python-built observations and settlement records go through `.checked(...)`."""
    found = []
    for path in [*(ROOT / "rulebook").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        if path.name in ("_model.py", "_settlement.py", "_checks.py") and "market" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if "rulebook/trading" in path.as_posix():  # the trading stage's own Settlement row
            text = re.sub(r"(?<![\w.])Settlement\(\n\s+exchange=", "", text)
        for m in _BARE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            if not text[: m.start()].rstrip().endswith("class"):
                found.append(f"{path.relative_to(ROOT)}:{line}")
        if path.relative_to(ROOT).as_posix() != _TRUSTED:
            for m in _MARKET_CLASSES.finditer(text):
                found.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}")
    assert found == []


def test_the_trusted_constructor_is_only_a_column_views_rows() -> None:
    """`_view.py` names the per-market classes once, in the table `_make` builds from,
    and builds them nowhere but in `_make`."""
    text = (ROOT / _TRUSTED).read_text(encoding="utf-8")
    table = text.index("_ROW_CLASSES: dict[")
    table_end = text.index("}\n", table)
    outside = text[:table] + text[table_end:]
    assert sorted(m.group(1) for m in _MARKET_CLASSES.finditer(outside)) == [
        "BorrowObservation", "PerpObservation", "SpotObservation",  # the import
    ]  # fmt: skip
    uses = [m.start() for m in re.finditer(r"\b_ROW_CLASSES\b", text)]
    make = text.index("    def _make(")
    make_end = text.index("\n    def ", make + 1)
    assert len(uses) == 2 and make < uses[1] < make_end  # defined once, read in _make only


def test_the_bounds_are_the_decoders_constraints() -> None:
    info = msgspec.inspect.type_info(PerpObservation)
    by_name = {f.name: f.type for f in info.fields}
    mark = by_name["mark"].types[0]  # Price | None
    assert (mark.ge, mark.le) == (LIMITS["price"].low, LIMITS["price"].high)
    fee = by_name["taker_fee"].types[0]
    assert (fee.ge, fee.lt) == (LIMITS["taker_fee"].low, LIMITS["taker_fee"].high)
