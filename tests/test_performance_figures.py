"""The machine-readable copy of docs/performance.md's figures keeps its shape.

Timings belong to benchmarks, never to tests: this checks that every figure
names the command that measures it, its unit and its target, and that the doc
and the copy list the same benchmark scripts; not the numbers themselves."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_figure_has_its_command_unit_and_target() -> None:
    data = json.loads((ROOT / "benchmarks" / "figures.json").read_text())
    assert data["measured"] and data["machine"]
    assert data["figures"]
    for f in data["figures"]:
        assert set(f) == {"name", "command", "value", "unit", "target", "target_is", "met"}, f
        assert f["unit"] in {"us", "ms", "s", "bytes", "ratio"}, f
        if f["value"] is None:  # not measured: then it is not claimed met either
            assert f["met"] is None, f
            continue
        assert isinstance(f["value"], int | float) and math.isfinite(f["value"]), f
        script = re.search(r"benchmarks/(\w+\.py)", f["command"])
        assert script and (ROOT / "benchmarks" / script.group(1)).exists(), f
        if f["target_is"] == "max" and f["target"] is not None:
            assert f["met"] == (f["value"] <= f["target"]), f


def test_the_doc_names_each_script_of_the_figures() -> None:
    doc = (ROOT / "docs" / "performance.md").read_text()
    data = json.loads((ROOT / "benchmarks" / "figures.json").read_text())
    for f in data["figures"]:
        if f["command"]:
            script = re.search(r"benchmarks/(\w+\.py)", f["command"])
            assert script and script.group(1) in doc, f
