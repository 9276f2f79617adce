"""Property tests: whatever the input, loading ends in diagnostics or a
ruleset, never in any other exception, and every diagnostic has a sane span."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulebook.lang import load_texts

STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"
SHIPPED = {p.name: p.read_text(encoding="utf-8") for p in sorted(STRATEGIES.glob("*.rules"))}

# Tokens of the language, and near misses, to splice into real files.
VOCABULARY = [
    "set",
    "let",
    "rule",
    "for",
    "in",
    "when",
    "then",
    "exit",
    "risk",
    "and",
    "or",
    "not",
    "hedge",
    "close",
    "alert",
    ":",
    ",",
    "=",
    "(",
    ")",
    "[",
    "]",
    "+",
    "-",
    "*",
    "/",
    ">",
    ">=",
    "<",
    "<=",
    "==",
    "!=",
    "%",
    '"',
    '"x {coin}"',
    "0.1%",
    "-0.02%",
    "1000 USDT",
    "8h",
    "0s",
    "1e-4",
    "1E5",
    "10x",
    "SOL",
    "1000PEPE",
    "binance",
    "binanse",
    "majors",
    "venues",
    "coin",
    "edge",
    "fees",
    "net(24h)",
    "confidence",
    "breakeven",
    "held",
    "pnl",
    "spread(SOL, okx, gate)",
    "funding(",
    "apr(",
    "abs(",
    "max(1%)",
    "\n",
    "\t",
    "#",
    "\x00",
    "\u00e9",
    "\ufeff",
    "max_hold",
    "stop_loss -1%",
]

# How many examples: the profile in conftest.py (HYPOTHESIS_PROFILE=deep for more).
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_well_formed(texts: dict[str, str | bytes]) -> None:
    res = load_texts(texts)
    for d in res.diagnostics:
        assert d.file in texts
        assert d.line >= 1 and d.column >= 1
        assert (d.end_line, d.end_column) >= (d.line, d.column)
        assert d.severity in ("error", "warning")
        assert d.code[0] in "EW" and d.message
    assert (res.ruleset is not None) == res.ok


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text):
    assert_well_formed({"fuzz.rules": text})


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data):
    assert_well_formed({"fuzz.rules": data})


@SETTINGS
@given(st.lists(st.sampled_from(VOCABULARY), max_size=40))
def test_token_soup_never_crashes(tokens):
    assert_well_formed({"soup.rules": " ".join(tokens)})


@st.composite
def mutated_strategy(draw):
    name = draw(st.sampled_from(sorted(SHIPPED)))
    text = SHIPPED[name]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "duplicate_line", "swap_lines"]))
        if op == "delete" and text:
            i = draw(st.integers(0, len(text) - 1))
            j = draw(st.integers(i, min(len(text), i + 20)))
            text = text[:i] + text[j:]
        elif op == "insert":
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.sampled_from(VOCABULARY)) + text[i:]
        else:
            lines = text.splitlines()
            if len(lines) >= 2:
                a = draw(st.integers(0, len(lines) - 1))
                b = draw(st.integers(0, len(lines) - 1))
                if op == "duplicate_line":
                    lines.insert(b, lines[a])
                else:
                    lines[a], lines[b] = lines[b], lines[a]
                text = "\n".join(lines)
    return name, text


@SETTINGS
@given(mutated_strategy())
def test_mutated_strategies_end_in_diagnostics_or_success(mutated):
    name, text = mutated
    files: dict[str, str | bytes] = dict(SHIPPED)
    files[name] = text
    assert_well_formed(files)


def test_shipped_strategies_are_clean_together():
    res = load_texts(dict(SHIPPED))
    assert res.ok and not res.diagnostics
