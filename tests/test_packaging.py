"""A non-editable install works from any directory: the grammar ships in the wheel."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # No build isolation: hatchling comes from the dev extras, so this runs offline.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
    )
    (whl,) = out.glob("rulebook-*.whl")
    return whl


def test_wheel_carries_the_grammar(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "rulebook/_grammar/rulebook.lark" in names
    assert "rulebook/lang/_parse.py" in names


def test_installed_wheel_validates_from_another_directory(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # The fresh environment gets rulebook from the wheel only; its dependencies
    # (lark, typer, ...) come from this test run's environment through a .pth
    # line, which Python appends after the venv's own site-packages.
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.rules").write_text(
        "when spread(SOL, backpack, binance) > 0.1% and confidence > 0.7 then hedge 1000 USDT\n"
    )
    where = subprocess.run(
        [str(py), "-c", "import rulebook; print(rulebook.__file__)"],
        cwd=elsewhere,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(site)), where  # the installed copy, not the checkout
    ok = subprocess.run(
        [str(env_dir / "bin" / "rulebook"), "validate", "mine.rules"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "1 file, 1 rule: 0 errors, 0 warnings" in ok.stderr
    (elsewhere / "mine.rules").write_text("when spread(SOL, binanse, okx) > 0.1% then close\n")
    bad = subprocess.run(
        [str(env_dir / "bin" / "rulebook"), "validate", "mine.rules"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "error[E102]: unknown exchange 'binanse'" in bad.stdout
