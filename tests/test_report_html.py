"""The HTML report is one self-contained file that a real browser opens without errors.

Uses Debian's `chromium` headless: installed with apt-get in this test's set-up
where that works (root, Debian), skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook.cli import app

ROOT = Path(__file__).resolve().parents[1]
AHA = ROOT / "examples" / "history" / "binance-bybit-okx-btc-eth-2023-2024.jsonl.gz"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("no chromium, and apt-get is not available to root here to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            subprocess.run(cmd, check=True, capture_output=True, timeout=900, env=env)
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"chromium could not be installed from Debian's packages: {e}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed no chromium binary")
    return found


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    res = CliRunner().invoke(
        app,
        ["backtest", str(ROOT / "strategies"), "--data", str(AHA), "--from", "2024-02-01",
         "--to", "2024-04-01", "--html", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def test_report_is_self_contained(report_html: Path) -> None:
    text = report_html.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # nothing to fetch: no script, no stylesheet or image from elsewhere
    assert "<script" not in text and "<link" not in text
    assert not re.search(r'src="(?!data:image/png;base64,)', text)
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', text)) == 4
    for section in ("Totals", "Per rule", "Per coin", "Per venue", "What the rules saw"):
        assert section in text


def test_report_opens_in_headless_chromium(report_html: Path, tmp_path: Path) -> None:
    browser = _chromium()
    # A test-only copy with a probe that records, in the DOM, how many images
    # decoded and whether any error fired; the report itself has no script.
    probe = tmp_path / "probe.html"
    probe.write_text(
        report_html.read_text(encoding="utf-8").replace(
            "</body>",
            "<script>window.onerror=function(m){document.body.dataset.err=m};"
            "window.addEventListener('load',function(){var ok=0,bad=0;"
            "for(const i of document.images){if(i.complete&&i.naturalWidth>0)ok++;else bad++;}"
            "document.body.dataset.images=ok+'/'+bad;});</script></body>",
        ),
        encoding="utf-8",
    )
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1200,1600", report_html.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    dom = subprocess.run(
        [*base, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-images="4/0"' in dom.stdout
    assert "data-err" not in dom.stdout
