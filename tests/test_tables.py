"""Tables that fit: columns are dropped by priority, a figure is never cut."""

from __future__ import annotations

import io

from rich.console import Console

from rulebook.app._tables import Col, fit_table, table_width

COLS = [
    Col("rule", "left", wrap=True),
    Col("edge"),
    Col("APR", keep=1),
    Col("fees", keep=2),
    Col("amount", keep=3),
    Col("mark", keep=9, wide=True),
]
ROWS = [
    ["extreme_long_crowd", "0.1128%", "123.5%", "0.310%", "1,000.00", "68,223.20"],
    ["cross_majors", "0.0563%", "61.7%", "0.210%", "1,000.00", "3,695.79"],
]


def render(fitted, width: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(fitted.table)
    return buf.getvalue()


def test_table_width_is_columns_plus_two_spaces_between() -> None:
    assert table_width([4, 2, 3]) == 4 + 2 + 3 + 2 * 2
    fitted = fit_table([Col("aaaa"), Col("bb"), Col("ccc")], [["aaaa", "bb", "ccc"]], 80)
    assert fitted.width == 13
    assert max(len(line.rstrip()) for line in render(fitted, 80).splitlines()) == 13


def test_columns_are_added_by_priority_while_they_fit() -> None:
    # natural widths: rule 18, edge 7, APR 6, fees 6, amount 8
    full = table_width([18, 7, 6, 6, 8])
    assert fit_table(COLS, ROWS, full).shown == ["rule", "edge", "APR", "fees", "amount"]
    assert fit_table(COLS, ROWS, full - 1).shown == ["rule", "edge", "APR", "fees"]
    narrow = fit_table(COLS, ROWS, table_width([18, 7, 6]))
    assert narrow.shown == ["rule", "edge", "APR"]
    assert narrow.hidden == ["fees", "amount"]  # the wide-only column is not "hidden"


def test_wide_shows_every_column_even_past_the_width() -> None:
    fitted = fit_table(COLS, ROWS, 40, wide=True)
    assert fitted.shown == [c.header for c in COLS]
    out = render(fitted, fitted.width)
    assert "68,223.20" in out and "…" not in out


def test_a_figure_is_never_cut_when_only_the_essential_columns_are_left() -> None:
    # 20 columns cannot hold rule (18) and edge (7): the rule name folds, the figure stays
    fitted = fit_table(COLS, ROWS, 20)
    out = render(fitted, 20)
    assert "0.1128%" in out and "0.0563%" in out
    assert "…" not in out
    assert all(len(line.rstrip()) <= 20 for line in out.splitlines())
