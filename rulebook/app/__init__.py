"""The application layer: what each command does and prints, for `rulebook.cli`.

    report_validation(load_ruleset(paths), typer.echo, out, err, strict=True)   # validate
    show_dry_run(ruleset, load_snapshot(ruleset, path, at), typer.echo, out, err)  # dry-run
    run_paper(ruleset, paths, config, ledger, replay=..., speed=..., watch=True, out=out, err=err)
    print_status(out, ledger_status(ledger))                                   # status

It wires the stages together (lang -> market -> engine -> trading -> reload)
and renders their results with rich; the stages themselves print nothing.

Each name loads its module on first use, so a command pays only for what it
needs: `validate` never imports numpy, the ledger, apprise or ccxt.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._backtest import (
        backtest_command,
        import_command,
        print_report,
        print_sweep,
        report_command,
        sweep_command,
        write_outputs,
    )
    from ._dry_run import load_snapshot, show_dry_run
    from ._funding_table import print_position_funding
    from ._halt import close_all_offline
    from ._live import LiveRefused, close_all_live, market_clients, prepare_live
    from ._render import render_explanations, render_skipped, render_summary, render_table, utc_time
    from ._report import SHOWN_CLOSED, print_status
    from ._screen import SORT_KEYS, Screen, build_screen
    from ._screen_render import render_screen
    from ._screen_session import ScreenSettings, run_screen
    from ._session import run_paper
    from ._snapshot import LoadedSnapshot, SnapshotError, parse_time, snapshot_from_file
    from ._sources import live_views, recording_span, replay_pacer, watched_markets
    from ._status import ledger_status, position_status, status_json
    from ._tables import Col, Fitted, fit_table
    from ._validate import check_on_save, print_rules, report_validation

_LAZY: dict[str, str] = {
    "backtest_command": "._backtest",
    "import_command": "._backtest",
    "print_report": "._backtest",
    "print_sweep": "._backtest",
    "sweep_command": "._backtest",
    "report_command": "._backtest",
    "write_outputs": "._backtest",
    "load_snapshot": "._dry_run",
    "LiveRefused": "._live",
    "close_all_live": "._live",
    "market_clients": "._live",
    "prepare_live": "._live",
    "show_dry_run": "._dry_run",
    "render_explanations": "._render",
    "render_skipped": "._render",
    "render_summary": "._render",
    "render_table": "._render",
    "utc_time": "._render",
    "SHOWN_CLOSED": "._report",
    "print_status": "._report",
    "print_position_funding": "._funding_table",
    "run_paper": "._session",
    "LoadedSnapshot": "._snapshot",
    "SnapshotError": "._snapshot",
    "parse_time": "._snapshot",
    "snapshot_from_file": "._snapshot",
    "live_views": "._sources",
    "recording_span": "._sources",
    "replay_pacer": "._sources",
    "watched_markets": "._sources",
    "ledger_status": "._status",
    "position_status": "._status",
    "status_json": "._status",
    "close_all_offline": "._halt",
    "ScreenSettings": "._screen_session",
    "run_screen": "._screen_session",
    "Screen": "._screen",
    "SORT_KEYS": "._screen",
    "build_screen": "._screen",
    "render_screen": "._screen_render",
    "Col": "._tables",
    "Fitted": "._tables",
    "fit_table": "._tables",
    "check_on_save": "._validate",
    "print_rules": "._validate",
    "report_validation": "._validate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


__all__ = [
    "SORT_KEYS",
    "ScreenSettings",
    "close_all_offline",
    "run_screen",
    "LiveRefused",
    "close_all_live",
    "market_clients",
    "prepare_live",
    "backtest_command",
    "import_command",
    "print_report",
    "print_sweep",
    "report_command",
    "sweep_command",
    "write_outputs",
    "Col",
    "Fitted",
    "Screen",
    "build_screen",
    "fit_table",
    "render_screen",
    "LoadedSnapshot",
    "SHOWN_CLOSED",
    "SnapshotError",
    "check_on_save",
    "ledger_status",
    "position_status",
    "status_json",
    "live_views",
    "load_snapshot",
    "parse_time",
    "print_rules",
    "print_status",
    "print_position_funding",
    "recording_span",
    "render_explanations",
    "render_skipped",
    "render_summary",
    "render_table",
    "replay_pacer",
    "report_validation",
    "run_paper",
    "show_dry_run",
    "snapshot_from_file",
    "utc_time",
    "watched_markets",
]
