"""What `rulebook validate` prints, and its check-on-save loop.

    def check(result): return report_validation(result, typer.echo, out, err, strict=True)
    code, error = check_on_save(paths, check, err, check(load_ruleset(paths)))

Kept out of `rulebook.lang`, which does no I/O besides reading rule files: it
joins the language's findings and the reload stage's file watcher.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import fields
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rulebook import _json
from rulebook.lang import (
    RISK_KEYS,
    LoadResult,
    ParseCache,
    PathError,
    format_value,
    load_ruleset,
    render_text,
)

__all__ = ["check_on_save", "print_rules", "report_validation"]


def report_validation(
    result: LoadResult,
    echo: Callable[[str], None],
    out: Console,
    err: Console,
    *,
    as_json: bool = False,
    strict: bool = False,
    list_rules: bool = False,
) -> int:
    """Print one check's findings (to `echo`) and summary (to `err`); return its exit status."""
    diags = result.diagnostics
    if as_json:
        echo(_json.dumps([d.to_dict() for d in diags], indent=2))
    else:
        for d in diags:
            echo(render_text(d, result.sources.get(d.file)))
            echo("")
        n_err, n_warn = len(result.errors), len(result.warnings)
        n_rules = result.rule_count
        summary = (
            f"{len(result.files)} file{'s' * (len(result.files) != 1)}, "
            f"{n_rules} rule{'s' * (n_rules != 1)}: "
            f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}"
        )
        err.print(summary, markup=False)
        if list_rules and result.ok:
            print_rules(out, result)
    failed = bool(result.errors) or (strict and bool(result.warnings))
    return 1 if failed else 0


def print_rules(console: Console, result: LoadResult) -> None:
    """A table of the ruleset's rules, then its risk limits."""
    rs = result.ruleset
    assert rs is not None
    table = Table(title=f"ruleset {rs.sha256[:12]}", title_justify="left")
    for col in ("rule", "where", "subject", "bindings", "actions", "exit"):
        table.add_column(col, no_wrap=col in ("rule", "where"))
    for r in rs.rules:
        actions = [type(a).__name__.lower() for a in r.source.actions]
        table.add_row(
            r.name,
            f"{Path(r.file).name}:{r.line}",
            r.subject_kind or "-",
            str(len(r.bindings)),
            ", ".join(actions),
            "yes" if r.exit_when else "-",
        )
    console.print(table)
    risk = {f.name: getattr(rs.risk, f.name) for f in fields(rs.risk)}
    risk = {k: v for k, v in risk.items() if v is not None}
    if risk:
        shown = (f"{k} {format_value(RISK_KEYS[k].type, v)}" for k, v in risk.items())
        console.print("risk: " + ", ".join(shown))
    else:
        console.print("risk: no risk block (no limits beyond the rules themselves)")


def check_on_save(
    paths: list[Path], check: Callable[[LoadResult], int], err: Console, code: int
) -> tuple[int, BaseException | None]:
    """Run `check` again after every settled save until Ctrl-C.

    Returns the last status (`code` if nothing was saved) and the error that
    stopped the watcher, if one did.
    """
    from rulebook.reload import RuleFileWatch  # watchfiles: only with --watch

    cache = ParseCache()
    last = code

    def on_settled(changes: AbstractSet[tuple[object, str]]) -> None:
        nonlocal last
        saved = ", ".join(sorted({Path(p).name for _, p in changes}))
        err.print(f"--- {time.strftime('%H:%M:%S')} saved {saved}: checking again", markup=False)
        try:
            last = check(load_ruleset(paths, cache))
        except PathError as e:  # e.g. the last rules file of a directory was deleted
            err.print(f"error: {e}", markup=False)
            last = 2

    watcher = RuleFileWatch(paths, on_settled)
    shown = " ".join(str(p) for p in paths)
    with watcher:  # start() returns once the watches are set: no save is missed after this
        err.print(f"watching {shown} for changes to *.rules (Ctrl-C to stop)", markup=False)
        try:
            while watcher.running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    return last, watcher.error
