"""The ledger's prepared rows are the general path's cells, value for value.

Opportunity records and funding payments are the rows a replay writes most;
the ledger prepares them without `_cells`' walk over a row dict
(`_opportunity_cells`, `_funding_cells`). Whatever a record holds (NaN and
infinities included), they give exactly what `_cells(path, table, _row(record))`
gives, or the same LedgerError. And the runtime's opportunity record reads the
same figures `Opportunity.to_dict()` gives (what it was built from before).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rulebook._text import mask_secrets
from rulebook.engine import evaluate
from rulebook.lang import Subject, load_ruleset
from rulebook.market import ReplaySource
from rulebook.trading import Ledger, LedgerError
from rulebook.trading._book import PaperLeg, PaperPosition
from rulebook.trading._executor import Fill
from rulebook.trading._ledger import (
    _CYCLE_COLUMNS,
    _CYCLE_VALUES,
    _ENCODE,
    _ENCODE_SORTED,
    _FILL_COLUMNS,
    _LEG_FIELDS,
    _OPPORTUNITY_COLUMNS,
    _ORDER_COLUMNS,
    _ORDER_VALUES,
    _cells,
    _checked,
    _funding_cells,
    _gone_cells,
    _opportunity_cells,
    _position_cells,
    _position_row,
    _position_update_cells,
    _row,
    gone_opportunity,
)
from rulebook.trading._records import CycleRecord, FundingRecord, OpportunityRecord, OrderRecord
from rulebook.trading._runtime import Runtime, _num

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
PATH = Path("test.db")

numbers = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**12), 10**12),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308]),
)
texts = st.one_of(st.none(), st.text(max_size=12))
legs = st.lists(
    st.dictionaries(st.sampled_from(["exchange", "market", "side", "x"]),
                    st.one_of(st.text(max_size=6), st.floats(allow_nan=True))),
    max_size=3,
)  # fmt: skip


def _general(table: str, record: Any) -> tuple[str, Any]:
    try:
        return "ok", tuple(_cells(PATH, table, _row(record)))
    except LedgerError as e:
        return "error", str(e)


def _fast(make: Any, record: Any) -> tuple[str, Any]:
    try:
        return "ok", tuple(make(PATH, record))
    except LedgerError as e:
        return "error", str(e)


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0] or a[0] == "error":
        return a == b
    return len(a[1]) == len(b[1]) and all(
        (x is y) or (x == y and type(x) is type(y)) or (x != x and y != y)
        for x, y in zip(a[1], b[1], strict=True)
    )


@given(
    st.builds(
        OpportunityRecord,
        cycle_ts=st.integers(0, 2**53),
        rule=st.text(max_size=8),
        bindings=st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
        coin=texts,
        subject=texts,
        legs=legs,
        edge=numbers, apr=numbers, fees=numbers, net_8h=numbers, confidence=numbers,
        risk=st.one_of(st.none(), st.sampled_from(["low", "medium", "high"])),
        amount=numbers,
        decision=texts,
        reason=texts,
        position_id=st.one_of(st.none(), st.integers(1, 10**6)),
    )  # fmt: skip
)
def test_an_opportunity_row_is_the_general_paths(record: OpportunityRecord) -> None:
    assert _same(_fast(_opportunity_cells, record), _general("opportunities", record))


#: what a payment's cells may hold besides the usual: structures (the general path
#: stores them as JSON) and text where a number belongs
odd = st.one_of(st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2),
                st.floats(), max_size=2), st.text(max_size=3), st.booleans())  # fmt: skip


@given(
    st.builds(
        FundingRecord,
        position_id=st.one_of(st.integers(1, 10**6), odd),
        exchange=st.one_of(st.text(max_size=8), odd),
        coin=st.one_of(texts, odd),
        ts=st.one_of(st.integers(0, 2**53), odd),
        rate=st.one_of(numbers, odd), mark=numbers, size=numbers, amount=numbers,
        interval_h=st.one_of(numbers, odd),
        rate_source=texts,
        mark_source=st.one_of(texts, odd),
    )  # fmt: skip
)
def test_a_funding_row_is_the_general_paths(record: FundingRecord) -> None:
    assert _same(_fast(_funding_cells, record), _general("funding_payments", record))


def _cells_before(path: Path, table: str, row: dict[str, Any]) -> list[Any]:
    """`_cells` as it was before its fast path: a walk over every cell."""
    out = []
    for column, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            if table == "opportunities":
                v = None
            else:
                raise LedgerError(
                    f"{path}: refused to write {v} into {table}.{column} (only finite numbers "
                    "reach the ledger); the cycle was not written, nothing stored is lost"
                )
        elif isinstance(v, dict | list | tuple):
            try:
                v = json.dumps(v, sort_keys=isinstance(v, dict), allow_nan=False)
            except ValueError:
                raise LedgerError(
                    f"{path}: refused to write a non-finite number inside {table}.{column}; "
                    "the cycle was not written, nothing stored is lost"
                ) from None
        elif table == "events" and column == "detail" and isinstance(v, str):
            v = mask_secrets(v)
        out.append(v)
    return out


cell_values = st.one_of(
    numbers,
    st.text(max_size=20),
    st.booleans(),
    st.sampled_from([np.float64(1.5), np.float64("nan"), np.int64(3), 1e308, 1e308]),
    st.lists(st.one_of(st.floats(allow_nan=True), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.one_of(st.floats(), st.integers()), max_size=3),
    st.sampled_from(["https://x/?apiKey=abc&signature=def", "secret=1"]),
)


@given(
    st.sampled_from(["opportunities", "positions", "events", "orders", "funding_payments"]),
    st.dictionaries(st.sampled_from(["detail", "a", "b", "c", "d", "e"]), cell_values, max_size=6),
)
def test_the_general_cells_are_the_walk_over_every_cell(
    table: str, row: dict[str, Any]
) -> None:
    def run(f: Any) -> tuple[str, Any]:
        try:
            return "ok", tuple(f(PATH, table, row))
        except LedgerError as e:
            return "error", str(e)

    assert _same(run(_cells), run(_cells_before))


def test_rows_of_overflowing_finite_numbers_are_stored() -> None:
    row = {"a": 1e308, "b": 1e308, "c": -5}
    assert _cells(PATH, "positions", row) == [1e308, 1e308, -5]


def test_a_non_finite_payment_is_refused_as_before() -> None:
    bad = FundingRecord(1, "okx", "SOL", 1, 0.0001, math.nan, 1.0, 0.5)
    with pytest.raises(LedgerError, match=r"funding_payments\.mark"):
        _funding_cells(PATH, bad)


def test_the_runtimes_opportunity_record_reads_what_to_dict_gives() -> None:
    """The runtime reads the figures it keeps straight from `o.figures`; before, it
    took them from `o.to_dict()`. Every fired and unfired opportunity of the shipped
    strategies over the example recording gives the same record both ways."""
    ruleset = load_ruleset([ROOT / "strategies"]).ruleset
    assert ruleset is not None
    compared = 0
    for n, view in enumerate(ReplaySource(EXAMPLE)):
        if n % 10:
            continue
        every = evaluate(ruleset, view, include_unfired=n % 20 == 0).opportunities
        for o in every:
            got = Runtime._opportunity_record(o, o.decision, o.reason, None, view.at)
            f = o.to_dict()
            want = OpportunityRecord(
                cycle_ts=view.at, rule=o.rule, bindings=o.bindings, coin=o.coin,
                subject=o.subject.kind if o.subject else None,
                legs=[leg.to_dict() for leg in o.legs],
                edge=_num(f["edge"]), apr=_num(f["apr"]), fees=_num(f["fees"]),
                net_8h=_num(f["net_8h"]), confidence=_num(f["confidence"]),
                risk=None if f["risk"] is None else str(f["risk"]),
                amount=o.amount, decision=o.decision, reason=o.reason, position_id=None,
            )  # fmt: skip
            assert _same(_fast(_opportunity_cells, got), _fast(_opportunity_cells, want))
            assert got == want or any(
                isinstance(x, float) and x != x for x in (got.edge, got.apr, got.net_8h)
            )
            compared += 1
    assert compared > 100


leg_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, 1e308, math.nan]),
)


@given(
    st.lists(
        st.builds(
            PaperLeg,
            exchange=st.sampled_from(["okx", "gate"]), market=st.sampled_from(["perp", "spot"]),
            side=st.sampled_from(["long", "short"]), borrowed=st.booleans(),
            size=leg_numbers, entry_price=leg_numbers, entry_fee=leg_numbers, mark=leg_numbers,
            funding=leg_numbers, borrow=leg_numbers,
            exit_price=st.one_of(st.none(), leg_numbers), exit_fee=leg_numbers,
            next_funding_ts=st.one_of(st.none(), st.integers(0, 2**53)),
            funding_rate=st.one_of(st.none(), leg_numbers),
            borrow_rate_daily=st.one_of(st.none(), leg_numbers),
            accrued_to=st.integers(0, 2**53),
        ),  # fmt: skip
        min_size=1,
        max_size=2,
    ),
    st.one_of(leg_numbers, st.integers(1, 10**6)),
    st.sampled_from(["open", "closed"]),
    st.one_of(st.none(), st.text(max_size=8)),
)
def test_a_position_update_row_is_the_general_paths(
    legs: list[PaperLeg], notional: float, status: str, reason: str | None
) -> None:
    p = PaperPosition(
        id=7, rule_name="r", bindings={"coin": "SOL"}, ruleset_sha="x",
        subject=Subject("carry", "SOL", ("okx",)), legs=legs, notional=notional,
        opened_at=1, status=status, closed_at=None if status == "open" else 5,
        close_reason=reason,
    )  # fmt: skip

    def before() -> tuple[str, Any]:  # the row record_positions built before
        funding, fees, price, borrow = p.parts()
        row = {
            "legs": [{n: getattr(leg, n) for n in _LEG_FIELDS} for leg in p.legs],
            "notional": p.notional, "status": p.status, "closed_at": p.closed_at,
            "close_reason": p.close_reason, "pnl_funding": funding, "pnl_fees": fees,
            "pnl_price": price, "pnl_borrow": borrow,
            "pnl": funding + fees + price + borrow, "updated_at": 9,
        }  # fmt: skip
        try:
            return "ok", (*_cells_before(PATH, "positions", row), p.id)
        except LedgerError as e:
            return "error", str(e)

    def now() -> tuple[str, Any]:
        try:
            return "ok", tuple(_position_update_cells(PATH, p, 9))
        except LedgerError as e:
            return "error", str(e)

    assert _same(now(), before())


# -- the other prepared rows: openings, closes, orders, fills, cycles, cash, JSON --------

paper_legs = st.lists(
    st.builds(
        PaperLeg,
        exchange=st.sampled_from(["okx", "gate"]),
        market=st.sampled_from(["perp", "spot"]),
        side=st.sampled_from(["long", "short"]),
        borrowed=st.booleans(),
        size=leg_numbers,
        entry_price=leg_numbers,
        entry_fee=leg_numbers,
        mark=leg_numbers,
        funding=leg_numbers,
        borrow=leg_numbers,
        exit_price=st.one_of(st.none(), leg_numbers),
        exit_fee=leg_numbers,
        accrued_to=st.integers(0, 2**53),
    ),  # fmt: skip
    min_size=1,
    max_size=3,
)


@given(
    paper_legs,
    st.one_of(leg_numbers, st.integers(1, 10**6)),
    st.sampled_from(["open", "closed"]),
    st.one_of(st.none(), st.text(max_size=8)),
    st.dictionaries(st.sampled_from(["coin", "hi", "lo", "venue"]), st.text(max_size=5)),
    st.lists(st.sampled_from(["okx", "gate", "bybit"]), min_size=1, max_size=2),
)
def test_a_whole_position_row_is_the_general_paths(
    legs: list[PaperLeg],
    notional: float,
    status: str,
    reason: str | None,
    bindings: dict[str, str],
    exchanges: list[str],
) -> None:
    """What record_opening and record_position write: `_position_cells` is `_cells` of
    `_position_row` (the row dict they wrote through before), refusals included."""
    p = PaperPosition(
        id=7, rule_name="r", bindings=bindings, ruleset_sha="x",
        subject=Subject("spread", "SOL", tuple(exchanges)), legs=legs, notional=notional,
        opened_at=1, status=status, closed_at=None if status == "open" else 5,
        close_reason=reason,
    )  # fmt: skip

    def run(make: Any) -> tuple[str, Any]:
        try:
            return "ok", tuple(make())
        except LedgerError as e:
            return "error", str(e)

    assert _same(
        run(lambda: _position_cells(PATH, p, 9)),
        run(lambda: _cells_before(PATH, "positions", _position_row(p, 9))),
    )


@given(
    st.builds(
        OrderRecord,
        ts=st.integers(0, 2**53),
        position_id=st.integers(1, 10**6),
        intent=st.text(max_size=6),
        exchange=st.text(max_size=6),
        coin=st.text(max_size=6),
        market=st.text(max_size=5),
        side=st.sampled_from(["buy", "sell"]),
        notional=numbers,
        status=st.text(max_size=6),
        reason=texts,
        client_order_id=texts,
    )  # fmt: skip
)
def test_an_order_row_is_the_general_paths(order: OrderRecord) -> None:
    def fast(path: Path, o: OrderRecord) -> Any:
        return _checked(path, "orders", _ORDER_COLUMNS, _ORDER_VALUES(o))

    assert _same(_fast(fast, order), _general("orders", order))


@given(
    st.builds(
        CycleRecord,
        ts=st.integers(0, 2**53),
        wall_ts=st.integers(0, 2**53),
        ruleset_sha=st.text(max_size=6),
        source=st.text(max_size=6),
        observations=st.integers(0, 10**6),
        opportunities=st.integers(0, 10**6),
        opened=st.integers(0, 99),
        closed=st.integers(0, 99),
        funding=numbers,
        equity=numbers,
    )  # fmt: skip
)
def test_a_cycle_row_is_the_general_paths(cycle: CycleRecord) -> None:
    def fast(path: Path, c: CycleRecord) -> Any:
        return _checked(path, "cycles", _CYCLE_COLUMNS, _CYCLE_VALUES(c))

    assert _same(_fast(fast, cycle), _general("cycles", cycle))


@given(
    st.integers(1, 10**6), st.integers(1, 10**6), st.integers(0, 2**53),
    st.builds(
        Fill, exchange=st.text(max_size=5), market=st.text(max_size=5),
        side=st.sampled_from(["buy", "sell"]), price=numbers, size=numbers, fee=numbers,
        fee_rate=numbers, price_source=st.text(max_size=5),
    ),
)  # fmt: skip
def test_a_fill_row_is_the_general_paths(
    order_id: int, position_id: int, ts: int, fill: Fill
) -> None:
    row = {
        "order_id": order_id, "position_id": position_id, "ts": ts, "exchange": fill.exchange,
        "market": fill.market, "side": fill.side, "price": fill.price, "size": fill.size,
        "fee": fill.fee, "fee_rate": fill.fee_rate, "price_source": fill.price_source,
    }  # fmt: skip
    assert tuple(row) == _FILL_COLUMNS

    def run(make: Any) -> tuple[str, Any]:
        try:
            return "ok", tuple(make())
        except LedgerError as e:
            return "error", str(e)

    assert _same(
        run(lambda: _checked(PATH, "fills", _FILL_COLUMNS, tuple(row.values()))),
        run(lambda: _cells_before(PATH, "fills", row)),
    )


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.text(max_size=6),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)  # fmt: skip


@given(json_values)
def test_the_cell_encoders_give_json_dumps_text(value: Any) -> None:
    """The encoders made once (`_ENCODE_SORTED`, `_ENCODE`) write what json.dumps
    writes, and refuse what it refuses (a non-finite number: ValueError)."""
    for encode, sort_keys in ((_ENCODE_SORTED, True), (_ENCODE, False)):
        try:
            want: Any = json.dumps(value, sort_keys=sort_keys, allow_nan=False)
        except ValueError:
            want = ValueError
        try:
            got: Any = encode(value)
        except ValueError:
            got = ValueError
        assert got == want


def test_a_cell_encoder_is_sound_after_a_refusal() -> None:
    with pytest.raises(ValueError):
        _ENCODE_SORTED({"a": [1.0, {"b": math.nan}]})
    assert _ENCODE_SORTED({"b": [1.0], "a": {"c": None}}) == '{"a": {"c": null}, "b": [1.0]}'


@given(
    st.text(max_size=8),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
    st.integers(0, 2**53),
)
def test_a_gone_row_is_the_general_paths(rule: str, bindings: dict[str, str], ts: int) -> None:
    """A binding that stopped firing: its row without a record (`_gone_cells`) is the
    cells of its record (`gone_opportunity`), which the general path writes too."""
    items = tuple(sorted(bindings.items()))
    record = gone_opportunity(rule, items, ts)
    assert record.decision == "gone" and record.bindings == bindings
    assert _same(
        _fast(lambda path, r: _gone_cells(path, rule, items, ts), record),
        _general("opportunities", record),
    )


@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(["coin", "hi"]), st.one_of(
                st.text(max_size=3), st.integers(0, 2), st.sampled_from([1.0, -0.0, 0.0, True]),
                st.lists(st.integers(), max_size=1),
            )),  # fmt: skip
            max_size=2,
        ),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_a_gone_row_of_a_kept_binding_text_is_the_general_paths(
    keys: list[list[tuple[str, Any]]], data: st.DataObject
) -> None:
    """The text of a binding tuple named again (the runtime names a binding by the same
    tuple every cycle) is its bindings' own, whatever was named before: equal-looking
    tuples of other types (1, 1.0, True; 0.0, -0.0) and unhashable ones included."""
    tuples = [tuple(k) for k in keys]
    for _ in range(3):
        for items in data.draw(st.permutations(tuples)):
            record = gone_opportunity("r", items, 5)
            assert _same(
                _fast(lambda path, r, items=items: _gone_cells(path, "r", items, 5), record),
                _general("opportunities", record),
            )


def test_a_gone_row_stored_from_its_statement_is_the_general_paths_row(tmp_path: Path) -> None:
    """`record_opportunities`' gone rows bind only their time, rule and bindings
    (`_INSERT_GONE` holds the rest as SQL literals): the stored rows, every column's
    value and storage class, are those `record_opportunity` of each gone record
    stores, in the same order after the same fired rows, with the same ids."""
    fired = OpportunityRecord(
        cycle_ts=5, rule="r", bindings={"coin": "SOL"}, coin="SOL", subject="spread",
        legs=[{"exchange": "okx"}], edge=0.1, apr=None, fees=0.0, net_8h=1.0, confidence=1,
        risk="low", amount=10.0, decision="blocked", reason="full", position_id=None,
    )  # fmt: skip
    gone = [
        ("r", (("coin", "SOL"), ("hi", "o'kx"))),
        ("it's", (("coin", 'E"TH'),)),
        ("r", ()),
        ("r", (("coin", "SOL"), ("hi", "o'kx"))),
    ]
    batched, general = Ledger(tmp_path / "batched.db"), Ledger(tmp_path / "general.db")
    with batched.cycle():
        batched.record_opportunities([fired], gone, ts=7)
    with general.cycle():
        general.record_opportunity(fired)
        for rule, items in gone:
            general.record_opportunity(gone_opportunity(rule, items, 7))
    query = "select *, " + ", ".join(f"typeof({c})" for c in _OPPORTUNITY_COLUMNS)
    rows = [
        ledger.read._conn.execute(f"{query} from opportunities order by id").fetchall()
        for ledger in (batched, general)
    ]
    assert len(rows[0]) == 5 and rows[0] == rows[1]
    batched.close()
    general.close()
