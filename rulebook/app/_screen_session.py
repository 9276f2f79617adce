"""`rulebook screen`: the screen once (`--once`, `--json`) or refreshing under rich Live.

    run_screen(settings, out, err)            # until Ctrl-C, or once

Sources: the six exchanges now (a cycle every `every` seconds), or a recording
(`--snapshot FILE`): at `--at`, once; or its latest snapshot, read again every
`every` seconds, so a screen can follow a file that `rulebook snapshot` is
writing elsewhere.

In the live view a key re-sorts the funding rows at once, between refreshes
(`KEYS`, shown in the footer): f funding, a APR, b basis, v volume, n next
settlement, c coin, e exchange; r reverses the order; q quits, as Ctrl-C does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.live import Live

from rulebook.engine import EngineConfig
from rulebook.lang import Ruleset
from rulebook.market import SnapshotView

from ._keys import KeyReader
from ._render import utc_time
from ._screen import Screen, build_screen, sort_venues
from ._screen_render import render_screen
from ._snapshot import SnapshotError, parse_time, snapshot_from_file

if TYPE_CHECKING:
    from rulebook.market import LiveSource

__all__ = ["KEYS", "ScreenSettings", "on_key", "run_screen"]

# The live view's keys: a sort key each (the --sort names), reverse, quit.
KEYS = {"f": "funding", "a": "apr", "b": "basis", "v": "volume", "n": "next", "c": "coin",
        "e": "exchange"}  # fmt: skip
# 80 columns exactly: a line of its own in the footer
KEYS_HELP = "keys: f funding, a APR, b basis, v volume, n next, c coin, e exchange, r reverse"


@dataclass(slots=True)
class ScreenSettings:
    coins: list[str]
    exchanges: list[str]
    ruleset: Ruleset | None
    snapshot: Path | None = None
    at: str | None = None
    every_s: float = 60.0
    sort: str = "funding"
    reverse: bool = False
    once: bool = False
    as_json: bool = False
    wide: bool = False
    config: EngineConfig | None = None
    deadline_s: float = 10.0


def _screen(s: ScreenSettings, view: SnapshotView, source: str) -> Screen:
    return build_screen(view, s.coins, s.exchanges, ruleset=s.ruleset, config=s.config,
                        source=source, sort=s.sort, reverse=s.reverse)


def _from_file(s: ScreenSettings) -> tuple[SnapshotView, list[str]]:
    assert s.snapshot is not None
    loaded = snapshot_from_file(s.snapshot, parse_time(s.at) if s.at else None)
    return loaded.view, loaded.problems


def _live_views(
    s: ScreenSettings, source: LiveSource
) -> Generator[tuple[SnapshotView, list[str]], None, None]:
    loop = asyncio.new_event_loop()
    try:
        while True:
            cycle = loop.run_until_complete(source.fetch_cycle())
            warnings = [f"{ex} unreachable: {why}" for ex, why in sorted(cycle.failures.items())]
            yield source.view(), warnings
    finally:
        loop.run_until_complete(source.close())
        loop.close()


def run_screen(s: ScreenSettings, out: Console, err: Console,
               echo: Callable[[str], None] = print) -> int:
    """Show the screen; returns the exit status (1 when no exchange answered)."""
    if s.snapshot is not None:
        return _run_file(s, out, err, echo)
    from rulebook.market import LiveSource  # imports ccxt: only when live

    source = LiveSource(s.exchanges, s.coins, deadline_s=s.deadline_s)
    views = _live_views(s, source)
    try:
        if s.once or s.as_json:
            view, warnings = next(views)
            for w in warnings:
                err.print(f"warning: {w}", markup=False)
            if len(warnings) == len(s.exchanges):
                err.print("error: no exchange answered; nothing to show", markup=False)
                return 1
            _show_once(s, _screen(s, view, "live"), out, echo)
            return 0
        return _live(s, out, lambda: next(views), "live")
    finally:
        views.close()


def _run_file(s: ScreenSettings, out: Console, err: Console, echo: Callable[[str], None]) -> int:
    view, problems = _from_file(s)
    for p in problems[:5]:
        err.print(f"warning: {p}", markup=False)
    source = str(s.snapshot)
    if s.once or s.as_json or s.at is not None:
        _show_once(s, _screen(s, view, source), out, echo)
        return 0
    return _live(s, out, lambda: _from_file(s), source)


def _show_once(s: ScreenSettings, screen: Screen, out: Console, echo: Callable[[str], None]) -> None:
    if s.as_json:
        echo(json.dumps(screen.to_dict(), indent=2, allow_nan=False))
    else:
        out.print(render_screen(screen, out.width, wide=s.wide, sort=s.sort, reverse=s.reverse))


def on_key(s: ScreenSettings, key: str) -> str | None:
    """One key press in the live view: "sort" (the settings now say the new order),
    "quit", or None for a key the screen does not use."""
    k = key.lower()
    if k in KEYS:
        s.sort, s.reverse = KEYS[k], False
        return "sort"
    if k == "r":
        s.reverse = not s.reverse
        return "sort"
    if k == "q":
        return "quit"
    return None


def _live(s: ScreenSettings, out: Console,
          fetch: Callable[[], tuple[SnapshotView, list[str]]], source: str) -> int:
    """Refresh every `every_s` seconds until q or Ctrl-C; the footer counts down each
    second, and a key press re-sorts at once."""
    def frame(screen: Screen, warnings: list[str], next_at: float, keys: bool) -> RenderableType:
        left = max(0, int(next_at - time.monotonic()))
        status = f"refresh every {s.every_s:g}s, next in {left}s | "
        status += ("q or Ctrl-C quits\n" + KEYS_HELP) if keys else "Ctrl-C quits"
        if warnings:
            status = "warning: " + "; ".join(warnings) + "\n" + status
        return render_screen(screen, out.width, wide=s.wide, sort=s.sort, status=status,
                             reverse=s.reverse)  # fmt: skip

    try:
        # No stdout redirection: the console's own stream (which masks secrets)
        # writes to sys.stdout, and a redirected one would feed back into Live.
        # The key reader is entered first and left last: the terminal's own settings
        # come back after the alternate screen is gone, however the view ends.
        with KeyReader() as keys, Live(console=out, screen=True, auto_refresh=False,
                                       transient=False, redirect_stdout=False,
                                       redirect_stderr=False) as live:  # fmt: skip
            quit_ = False
            while not quit_:
                try:
                    view, warnings = fetch()
                except SnapshotError as e:
                    view, warnings = SnapshotView(int(time.time() * 1000), {}), [str(e)]
                screen = _screen(s, view, source)
                next_at = time.monotonic() + s.every_s
                while not quit_:
                    live.update(frame(screen, warnings, next_at, keys.active), refresh=True)
                    left = next_at - time.monotonic()
                    if left <= 0:
                        break
                    for key in keys.wait(min(1.0, left)):
                        action = on_key(s, key)
                        if action == "quit":
                            quit_ = True
                            break
                        if action == "sort":
                            screen.venues = sort_venues(screen.venues, s.sort, s.reverse)
    except KeyboardInterrupt:
        pass
    out.print(f"screen stopped at {utc_time(int(time.time() * 1000))}", markup=False)
    return 0
