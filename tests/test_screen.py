"""`rulebook screen`'s figures, from the bundled real recording and a synthetic one,
checked against hand computations."""

from __future__ import annotations

from pathlib import Path

import pytest
from trading_helpers import write_jsonl

from rulebook.app import load_snapshot
from rulebook.app._screen import build_screen, sort_venues, why_not
from rulebook.lang import load_ruleset, load_texts
from rulebook.market import EXCHANGES, ReplaySource

EXAMPLE = Path(__file__).parents[1] / "examples" / "binance-bybit-okx-btc-eth-2023-2024.jsonl"
STRATEGIES = Path(__file__).parents[1] / "strategies"
TS = 1_753_113_600_000  # synthetic: 2025-07-21 16:00 UTC
M = 60_000


def synthetic(tmp_path: Path) -> Path:
    """BTC on three venues with 8h, 4h and 1h intervals; spot on binance only."""

    def perp(ex: str, rate: float, interval: float, mark: float, nxt: int) -> dict:
        return {
            "ts": TS,
            "exchange": ex,
            "coin": "BTC",
            "market": "perp",
            "funding_rate": rate,
            "funding_interval_h": interval,
            "next_funding_ts": nxt,
            "mark": mark,
            "index": mark,
            "volume_24h": 2.5e9,
        }

    return write_jsonl(
        tmp_path / "rec.jsonl",
        [
            perp("binance", 0.0001, 8, 100.2, TS + 30 * M),
            perp("bybit", 0.0001, 4, 100.0, TS + 90 * M),
            perp("okx", 0.00002, 1, 100.1, TS + 10 * M),
            {
                "ts": TS,
                "exchange": "binance",
                "coin": "BTC",
                "market": "spot",
                "bid": 99.9,
                "ask": 100.1,
            },
        ],
    )


RULES = """
rule wide_spread:
    for hi in pair, lo in pair
    when spread(BTC, hi, lo) > 0.02%
    then hedge 1000 USDT
rule any_spread:
    for hi in pair, lo in pair
    when spread(BTC, hi, lo) > 0.005%
    then hedge 1000 USDT
set pair = binance, bybit
"""


def test_funding_per_interval_and_per_8h_apr_next_basis(tmp_path) -> None:
    view = next(iter(ReplaySource(synthetic(tmp_path))))
    screen = build_screen(view, ["BTC"], EXCHANGES, source="rec", sort="coin")
    rows = {v.exchange: v for v in screen.venues}
    assert set(rows) == {"binance", "bybit", "okx"}
    assert rows["bybit"].funding_rate == 0.0001 and rows["bybit"].interval_h == 4
    assert rows["bybit"].funding_8h == pytest.approx(0.0002, abs=1e-12)  # 0.0001 * 8 / 4
    assert rows["okx"].funding_8h == pytest.approx(0.00016, abs=1e-12)  # 0.00002 * 8 / 1
    assert rows["bybit"].apr == pytest.approx(0.0002 * 3 * 365, abs=1e-12)
    assert rows["okx"].next_funding_s == 600.0
    assert rows["binance"].basis == pytest.approx((100.2 - 100.0) / 100.0, abs=1e-12)
    assert rows["bybit"].basis is None  # no spot recorded there
    assert rows["binance"].volume_24h == 2.5e9
    (spread,) = screen.spreads
    # per 8h: bybit 0.0002, okx 0.00016, binance 0.0001
    assert (spread.short, spread.long, spread.venues) == ("bybit", "binance", 3)
    assert spread.spread_8h == pytest.approx(0.0001, abs=1e-12)
    assert spread.apr == pytest.approx(0.0001 * 1095, abs=1e-12)
    assert screen.missing == {ex: "not in this recording" for ex in ("backpack", "gate", "bitget")}


def test_sorting_by_each_key(tmp_path) -> None:
    view = next(iter(ReplaySource(synthetic(tmp_path))))
    rows = build_screen(view, ["BTC"], EXCHANGES).venues
    order = lambda key: [r.exchange for r in sort_venues(rows, key)]  # noqa: E731
    assert order("funding") == ["bybit", "okx", "binance"]
    assert order("next") == ["okx", "binance", "bybit"]
    assert order("basis") == ["binance", "bybit", "okx"]  # only binance has one; missing last
    assert order("exchange") == ["binance", "bybit", "okx"]
    with pytest.raises(ValueError, match="unknown sort key 'size'"):
        build_screen(view, ["BTC"], EXCHANGES, sort="size")


def test_reverse_sorting_keeps_missing_figures_last(tmp_path) -> None:
    view = next(iter(ReplaySource(synthetic(tmp_path))))
    rows = build_screen(view, ["BTC"], EXCHANGES).venues
    order = lambda key: [r.exchange for r in sort_venues(rows, key, reverse=True)]  # noqa: E731
    assert order("funding") == ["binance", "okx", "bybit"]  # smallest first
    assert order("next") == ["bybit", "binance", "okx"]  # latest first
    assert order("basis") == ["binance", "bybit", "okx"]  # the rows without a basis stay last
    assert order("exchange") == ["okx", "bybit", "binance"]
    screen = build_screen(view, ["BTC"], EXCHANGES, sort="funding", reverse=True)
    assert [r.exchange for r in screen.venues] == ["binance", "okx", "bybit"]


def test_rules_now_says_what_fires_and_why_not(tmp_path) -> None:
    view = next(iter(ReplaySource(synthetic(tmp_path))))
    rs = load_texts({"s.rules": RULES}).ruleset
    screen = build_screen(view, ["BTC"], EXCHANGES, ruleset=rs)
    now = {r.rule: r for r in screen.rules}
    # spread(BTC, bybit, binance) = 0.0002 - 0.0001 = 0.01% per 8h
    assert now["any_spread"].fires and now["any_spread"].decision == "open"
    assert now["any_spread"].why == "-bybit +binance edge 0.0100%"
    assert not now["wide_spread"].fires
    assert now["wide_spread"].why == "spread(BTC, hi, lo) = 0.01%, not > 0.02%"
    assert now["wide_spread"].bindings == {"hi": "bybit", "lo": "binance"}


def test_real_recording_at_the_readme_time() -> None:
    rs = load_ruleset([STRATEGIES]).ruleset
    loaded = load_snapshot(rs, EXAMPLE, "2024-03-05T08:00Z")
    screen = build_screen(loaded.view, ["BTC", "ETH", "SOL"], EXCHANGES, ruleset=rs)
    top = screen.venues[0]
    assert (top.coin, top.exchange, top.funding_8h) == ("BTC", "bybit", 0.00112788)
    assert top.apr == pytest.approx(0.00112788 * 1095, abs=1e-12)
    eth = next(s for s in screen.spreads if s.coin == "ETH")
    assert (eth.short, eth.long) == ("binance", "okx")
    assert eth.spread_8h == pytest.approx(0.00101724 - 0.0003448070936528, abs=1e-15)
    now = {(r.rule, r.coin): r for r in screen.rules}
    assert now[("cross_majors", "ETH")].decision == "open"
    assert now[("cross_majors", "BTC")].why.startswith("spread(coin, hi, lo) = 0.048371%, not >")
    assert now[("carry_majors", "SOL")].why.endswith("not in this recording (and 5 other reasons)")
    assert screen.to_dict()["venues"][0]["funding_8h"] == 0.00112788


def test_why_not_without_an_explanation() -> None:
    class Bare:
        explanation = None

    assert why_not(Bare()) == "the when clause is false"  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [80, 120])
def test_rendered_screen_fits_and_cuts_no_figure(width) -> None:
    import io

    from rich.console import Console

    from rulebook.app._screen_render import render_screen

    rs = load_ruleset([STRATEGIES]).ruleset
    loaded = load_snapshot(rs, EXAMPLE, "2024-03-05T08:00Z")
    screen = build_screen(loaded.view, ["BTC", "ETH", "SOL"], EXCHANGES, ruleset=rs)
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(render_screen(screen, width))
    out = buf.getvalue()
    assert all(len(line) <= width for line in out.splitlines())
    assert "…" not in out
    for figure in ("0.1128%", "123.5%", "0.0672%", "73.6%", "17.2B", "+0.159%"):
        assert figure in out, figure


def test_screen_cli_once_json_and_mistakes(monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from rulebook.cli import app

    monkeypatch.chdir(Path(__file__).parents[1])
    runner = CliRunner()
    args = ["screen", "strategies/", "--snapshot", str(EXAMPLE), "--at", "2024-03-05T08:00Z"]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["coins"] == ["BTC", "ETH", "SOL"] and len(data["exchanges"]) == 6
    assert data["venues"][0]["funding_8h"] == 0.00112788
    eth = next(r for r in data["rules"] if (r["rule"], r["coin"]) == ("cross_majors", "ETH"))
    assert (eth["fires"], eth["decision"], eth["bindings"]) == (
        True, "open", {"coin": "ETH", "hi": "bybit", "lo": "okx"})
    res = runner.invoke(app, [*args, "--coins", "BTC", "--sort", "volume", "--once"])
    assert res.exit_code == 0, res.output
    rows = [ln.split()[:2] for ln in res.stdout.splitlines() if ln.startswith("BTC ")]
    assert rows[:3] == [["BTC", "binance"], ["BTC", "bybit"], ["BTC", "okx"]]  # 46.5B, 17.2B, 15.1B
    res = runner.invoke(app, [*args, "--coins", "BTC", "--sort", "volume", "--reverse", "--once"])
    rows = [ln.split()[:2] for ln in res.stdout.splitlines() if ln.startswith("BTC ")]
    assert rows[:3] == [["BTC", "okx"], ["BTC", "bybit"], ["BTC", "binance"]]
    assert "sorted by volume, reversed" in " ".join(res.stdout.split())
    for bad, message in [
        (["screen", "--at", "2024-03-05T08:00Z", "--once"], "--at needs --snapshot"),
        ([*args, "--sort", "size"], "--sort 'size': expected one of funding, apr"),
        ([*args, "--exchanges", "bybt"], "unknown exchange 'bybt'; did you mean 'bybit'?"),
        (["screen", "strategies/", "--snapshot", str(EXAMPLE), "--at", "2030-01-01"],
         "which runs from 2022-12-31 23:59:00 UTC to 2024-06-30 23:59:00 UTC"),
    ]:
        res = runner.invoke(app, bad)
        assert res.exit_code == 2, (bad, res.output)
        assert message in " ".join(res.output.split()), res.output
