"""What `rulebook dry-run` does: one snapshot, evaluated and shown to an operator.

    loaded = load_snapshot(ruleset, Path("rec.jsonl"), at="2024-06-30T16:00Z")
    show_dry_run(ruleset, loaded, typer.echo, out, err, explain=True)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from rulebook import _json
from rulebook.engine import evaluate
from rulebook.lang import Ruleset

from ._render import render_explanations, render_skipped, render_summary, render_table
from ._snapshot import LoadedSnapshot, SnapshotError, parse_time, snapshot_from_file, snapshot_live

__all__ = ["load_snapshot", "show_dry_run"]

SHOWN_PROBLEMS = 5


def load_snapshot(ruleset: Ruleset, snapshot: Path | None, at: str | None) -> LoadedSnapshot:
    """The recorded snapshot at `at` (default: the file's end), or the exchanges' now.

    Raises SnapshotError, whose message is for the operator.
    """
    if snapshot is not None:
        loaded = snapshot_from_file(snapshot, parse_time(at) if at else None)
    elif at is not None:
        raise SnapshotError("--at needs --snapshot: live data is always now")
    else:
        loaded = snapshot_live(ruleset)
    return _plausible(loaded)


def _plausible(loaded: LoadedSnapshot) -> LoadedSnapshot:
    """One snapshot has no previous prices: a price far from the other venues' is
    left out of the evaluation, as a run's cycle would (docs/limits.md)."""
    from rulebook.market import PriceGuard

    view, rejected = PriceGuard().check(loaded.view)
    if not rejected:
        return loaded
    problems = [*loaded.problems, *(f"price rejected: {r.text()}" for r in rejected)]
    return LoadedSnapshot(view, loaded.source, problems)


def show_dry_run(
    ruleset: Ruleset,
    loaded: LoadedSnapshot,
    echo: Callable[[str], None],
    out: Console,
    err: Console,
    *,
    as_json: bool = False,
    show_all: bool = False,
    explain: bool = False,
    wide: bool = False,
) -> None:
    """Warn of the snapshot's problems (to `err`), evaluate, and print the evaluation:
    spec section 10 JSON to `echo`, or the tables and summary to `out`."""
    for problem in loaded.problems[:SHOWN_PROBLEMS]:
        err.print(f"warning: {problem}", markup=False)
    if len(loaded.problems) > SHOWN_PROBLEMS:
        err.print(f"warning: ... and {len(loaded.problems) - SHOWN_PROBLEMS} more", markup=False)

    ev = evaluate(ruleset, loaded.view, include_unfired=show_all or explain, explain=explain)
    if as_json:
        echo(_json.dumps(ev.to_dict(include_unfired=show_all), indent=2))
        return
    render_table(ev, out, include_unfired=show_all, wide=wide)
    render_skipped(ev, out, every=show_all or explain)
    if explain:
        render_explanations(ev, out)
    render_summary(ev, out, loaded.source, len(ruleset.rules))
