"""Tables that fit the terminal: columns are dropped, never figures cut.

    cols = [Col("rule", "left", wrap=True), Col("edge"), Col("fees", keep=3)]
    fitted = fit_table(cols, rows, width=console.width, wide=False)
    console.print(fitted.table)          # fitted.hidden: headers left out

Rich shrinks a table that is wider than the console by cutting cells to
`0.0…`; an operator then reads no figure at all. Here every column has a
priority (`keep`: 0 is always shown, higher numbers go first), and columns are
added in priority order only while the table still fits. Figures never wrap;
only text columns marked `wrap` (rule names, reasons) may fold onto a second
line when even the essential columns do not fit. `--wide` shows every column
at its natural width, wider than the terminal if need be (never cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["Col", "Fitted", "fit_table", "print_fitted", "table_width", "GAP"]

# Two spaces between columns, none at the edges (see `_new_table`).
GAP = 2

Cell = str | Text


@dataclass(frozen=True, slots=True)
class Col:
    header: str
    justify: Literal["left", "right"] = "right"
    #: 0 is always shown; columns with higher numbers are dropped first.
    keep: int = 0
    #: shown only with --wide
    wide: bool = False
    #: text that may fold onto more lines when the essential columns do not fit
    wrap: bool = False


@dataclass(slots=True)
class Fitted:
    table: Table
    width: int  # the table's natural width, in cells
    shown: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)


def _len(cell: Cell, first_line: bool = False) -> int:
    """A cell's width: its widest line, or (for a wrap column) its first line, as
    its later lines (the bindings under a rule name) may fold."""
    text = cell.plain if isinstance(cell, Text) else cell
    lines = text.splitlines()[:1] if first_line else text.splitlines()
    return max((cell_len(line) for line in lines), default=0)


def _pad(cell: Cell, width: int) -> Cell:
    """`cell` right-aligned in `width` cells (each of its lines)."""
    if isinstance(cell, Text):
        lines = cell.split("\n")
        out = Text(style=cell.style, end=cell.end)
        for n, line in enumerate(lines):
            if n:
                out.append("\n")
            out.append(" " * max(0, width - cell_len(line.plain)))
            out.append_text(line)
        return out
    return "\n".join(" " * max(0, width - cell_len(ln)) + ln for ln in cell.split("\n"))


def table_width(widths: Sequence[int]) -> int:
    """The printed width of a table whose columns are `widths` wide."""
    return sum(widths) + GAP * max(0, len(widths) - 1)


def _new_table(**kwargs: object) -> Table:
    return Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        header_style="bold",
        **kwargs,  # type: ignore[arg-type]
    )


def fit_table(
    cols: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    wide: bool = False,
    **table_kwargs: object,
) -> Fitted:
    """A table of the columns that fit in `width` (all of them with `wide`)."""
    natural = [
        max([cell_len(c.header), *(_len(r[i], c.wrap and not wide) for r in rows)])
        for i, c in enumerate(cols)
    ]
    candidates = [i for i, c in enumerate(cols) if wide or not c.wide]
    if wide:
        chosen = candidates
    else:
        chosen = [i for i in candidates if cols[i].keep == 0]
        for i in sorted((i for i in candidates if cols[i].keep > 0), key=lambda i: cols[i].keep):
            trial = sorted([*chosen, i])
            if table_width([natural[j] for j in trial]) <= width:
                chosen = trial
        chosen.sort()
    table = _new_table(**table_kwargs)
    padded: set[int] = set()
    for i in chosen:
        c = cols[i]
        if c.wrap and not wide:
            table.add_column(c.header, justify=c.justify, overflow="fold")
        else:
            # min_width: rich never shrinks this column below its widest figure; and
            # overflow="ignore", so that it never cuts one to `0.0…` either. rich does not
            # justify an "ignore" column: a right-aligned one is padded here.
            right = c.justify == "right"
            if right:
                padded.add(i)
            table.add_column(
                _pad(c.header, natural[i]) if right else c.header,
                justify=c.justify, no_wrap=True, min_width=natural[i], overflow="ignore",
            )  # fmt: skip
    for r in rows:
        table.add_row(*(_pad(r[i], natural[i]) if i in padded else r[i] for i in chosen))
    return Fitted(
        table,
        table_width([natural[i] for i in chosen]),
        [cols[i].header for i in chosen],
        [cols[i].header for i in candidates if i not in chosen],
    )


def print_fitted(console: Console, fitted: Fitted, wide: bool) -> None:
    """A fitted table; with --wide at its full width even past the console's (never cut)."""
    if wide and fitted.width > console.width:
        # rich never renders wider than its console: a console as wide as the table
        full = Console(
            file=console.file,
            width=fitted.width,
            highlight=False,
            color_system=console.color_system,  # type: ignore[arg-type]
            force_terminal=console.is_terminal,
            no_color=console.no_color,
        )
        full.print(fitted.table)
    else:
        console.print(fitted.table)
