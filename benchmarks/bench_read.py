#!/usr/bin/env python3
"""Reading a recording: rulebook's reader against msgspec's typed decode (issue 13).

The recording is the synthetic one of bench_paper_runtime.py (6 exchanges x N
coins, hourly; made here, seeded, clearly not market data). Three sides, run
in interleaved rounds over the same file and compared by medians:

- rulebook: `iter_jsonl` (what dry-run, replay and backtest read through):
  bounded lines, JSON, the spec 9 checks, a record per valid line;
- msgspec typed decode (the baseline): each line decoded straight into a
  typed msgspec Struct with the same fields (types only, no range checks);
- pydantic-core's typed decode, the alternative measured before choosing:
  `model_validate_json` per line into a pydantic model with the same bounds as
  field constraints (checked in Rust) and the rules across fields as one
  model validator;
- json.loads only, for scale.

Target: rulebook at most 1.5x the typed decode.

    .venv/bin/python benchmarks/bench_read.py                 # 720 hours x 50 coins (612,000 lines)
    .venv/bin/python benchmarks/bench_read.py --hours 48 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rulebook.market import iter_jsonl

sys.path.insert(0, str(Path(__file__).parent))
from bench_paper_runtime import generate  # noqa: E402


class Line(msgspec.Struct, forbid_unknown_fields=False):
    ts: int
    exchange: str
    coin: str
    market: str
    symbol: str | None = None
    funding_rate: float | None = None
    funding_interval_h: float | None = None
    next_funding_ts: int | None = None
    mark: float | None = None
    index: float | None = None
    bid: float | None = None
    ask: float | None = None
    volume_24h: float | None = None
    taker_fee: float | None = None
    borrow_rate_daily: float | None = None


Ms = Annotated[int, Field(ge=10**12, le=10**13)]
Price = Annotated[float, Field(ge=1e-12, le=1e12)]


class PydanticLine(BaseModel):
    """The same fields and bounds, for pydantic-core's own JSON path (strict types)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    ts: Ms
    exchange: Literal["backpack", "binance", "bybit", "okx", "gate", "bitget"]
    coin: Annotated[str, Field(max_length=32, pattern=r"^[A-Z0-9]+$")]
    market: Literal["perp", "spot", "borrow"]
    symbol: Annotated[str, Field(max_length=100)] | None = None
    funding_rate: Annotated[float, Field(ge=-0.1, le=0.1)] | None = None
    funding_interval_h: Annotated[float, Field(ge=1 / 60, le=24)] | None = None
    next_funding_ts: Ms | None = None
    mark: Price | None = None
    index: Price | None = None
    bid: Price | None = None
    ask: Price | None = None
    volume_24h: Annotated[float, Field(ge=0, le=1e15)] | None = None
    taker_fee: Annotated[float, Field(ge=0, lt=0.05)] | None = None
    borrow_rate_daily: Annotated[float, Field(ge=0, le=1)] | None = None

    @model_validator(mode="after")
    def _across_fields(self) -> PydanticLine:
        if self.market != "perp" and self.funding_rate is not None:
            raise ValueError("funding_rate belongs to a perp observation")
        if (self.market == "borrow") != (self.borrow_rate_daily is not None):
            raise ValueError("borrow_rate_daily belongs to a borrow observation")
        if self.bid is not None and self.ask is not None and self.bid > self.ask:
            raise ValueError("crossed book")
        return self


def read_rulebook(path: Path) -> int:
    return sum(1 for _, rec, _ in iter_jsonl(path) if rec is not None)


def read_msgspec(path: Path) -> int:
    decode = msgspec.json.Decoder(Line).decode
    n = 0
    with path.open("rb") as fh:
        for raw in fh:
            decode(raw)
            n += 1
    return n


def read_pydantic(path: Path) -> int:
    validate = PydanticLine.model_validate_json
    n = 0
    with path.open("rb") as fh:
        for raw in fh:
            validate(raw)
            n += 1
    return n


def read_json(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for raw in fh:
            json.loads(raw)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--hours", type=int, default=720)
    ap.add_argument("--coins", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    data = Path(tempfile.gettempdir()) / f"rulebook-bench-{args.hours}h-{args.coins}c.jsonl"
    if not data.exists():
        generate(data, args.hours, args.coins)
    sides = {
        "rulebook": read_rulebook,
        "msgspec": read_msgspec,
        "pydantic-core": read_pydantic,
        "json.loads": read_json,
    }
    times: dict[str, list[float]] = {k: [] for k in sides}
    counts = {}
    names = list(sides)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            counts[name] = sides[name](data)
            times[name].append(time.perf_counter() - t0)
    assert len(set(counts.values())) == 1, counts
    med = {k: statistics.median(v) for k, v in times.items()}
    n = counts["rulebook"]
    print(f"{n:,} lines, {args.rounds} interleaved rounds, medians:")
    labels = {
        "rulebook": "rulebook iter_jsonl",
        "msgspec": "msgspec typed decode (baseline)",
        "pydantic-core": "pydantic model_validate_json",
        "json.loads": "json.loads only",
    }
    for k in names:
        print(f"  {labels[k]:<34} {med[k]:7.3f} s  {n / med[k]:12,.0f} lines/s")
    print(
        f"  ratio rulebook / msgspec typed decode: {med['rulebook'] / med['msgspec']:.2f}"
        "  (target <= 1.5)"
    )
    print(f"  ratio pydantic-core / msgspec typed decode: {med['pydantic-core'] / med['msgspec']:.2f}")


if __name__ == "__main__":
    main()
