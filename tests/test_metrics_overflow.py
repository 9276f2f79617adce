"""The array `breakeven_s` gives its figure without a numpy warning on any floats.

`fees / edge * 8h` overflows for a subnormal edge (5e-324) or huge fees: the
figure is then infinite ("never breaks even", as for an edge <= 0), which the
arrays and the scalar branch agree on bit for bit (tests/test_metrics_scalar.py);
the arrays used to say so with a RuntimeWarning ("overflow encountered in
divide / multiply") in the middle of a run. Warnings are errors here.
"""

from __future__ import annotations

import math
import struct
import warnings

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rulebook.engine import _metrics as M

_any = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
_edge = _any | st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-320, 1e-300])
_fees = _any | st.sampled_from([0.0, 0.002, 1e305, -1e305, 1.7e308])


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def test_the_overflows_seen_are_infinite_and_silent() -> None:
    edge = np.array([5e-324, 1e-3, 1e-310, 0.0, -1e-320, 1e-3])
    fees = np.array([1.0, 1e305, 0.002, 0.001, 0.002, 0.002])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = M.breakeven_s(edge, fees)
    assert got.tolist()[:5] == [math.inf] * 5
    assert got[5] == 0.002 / 1e-3 * M.EIGHT_HOURS_S  # a plain figure is untouched


@settings(max_examples=300, deadline=None)
@given(edge=st.lists(_edge, min_size=1, max_size=6), fees=st.lists(_fees, min_size=1, max_size=6))
@example(edge=[5e-324], fees=[1.0])
@example(edge=[1e-3], fees=[1e305])
def test_breakeven_arrays_never_warn_and_are_the_scalar_figures(edge, fees) -> None:
    n = min(len(edge), len(fees))
    edge, fees = edge[:n], fees[:n]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = M.breakeven_s(np.array(edge), np.array(fees)).tolist()
    want = [M.breakeven_s(e, f) for e, f in zip(edge, fees, strict=True)]
    assert [_bits(g) for g in got] == [_bits(w) for w in want]
