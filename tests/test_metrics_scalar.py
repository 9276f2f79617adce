"""One opportunity's figures take a scalar branch of `_metrics`; it gives the arrays' numbers.

`breakeven_s` and `risk_level` of plain floats (a `SubjectFigures`, which
the runtime reads for every opportunity it records) skip numpy; on any
floats (infinities, NaN, zero, subnormals, negatives) they give what the
same formulas give over arrays, bit for bit.
"""

from __future__ import annotations

import math
import struct

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rulebook.engine import _metrics as M

_any = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
_rate = st.floats(-0.01, 0.01) | st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-300])
_age = st.floats(0, 1e7) | st.sampled_from(
    [M.LOW_RISK_BREAKEVEN_S, M.HIGH_RISK_BREAKEVEN_S, math.inf, math.nan]
)
_confidence = st.floats(0, 1) | st.sampled_from(
    [M.LOW_RISK_CONFIDENCE, M.HIGH_RISK_CONFIDENCE, math.nan]
)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


@settings(max_examples=400, deadline=None)
@given(edge=_any | _rate, fees=_any | _rate)
@example(edge=5e-324, fees=1.0)  # overflows to infinity
@example(edge=0.0, fees=0.001)
@example(edge=math.nan, fees=0.001)
def test_breakeven_of_floats_is_the_arrays(edge: float, fees: float) -> None:
    got = M.breakeven_s(edge, fees)
    with np.errstate(all="ignore"):
        (want,) = M.breakeven_s(np.array([edge]), np.array([fees])).tolist()
    assert type(got) is float and _bits(got) == _bits(want)


@settings(max_examples=400, deadline=None)
@given(confidence=_confidence | _any, breakeven=_age | _any)
def test_risk_of_floats_is_the_arrays(confidence: float, breakeven: float) -> None:
    got = M.risk_level(confidence, breakeven)
    (want,) = M.risk_level(np.array([confidence]), np.array([breakeven])).tolist()
    assert type(got) is int and got == want


def test_the_scalar_branch_is_taken_for_floats_only() -> None:
    # numpy scalars and 0-d arrays still take the array formulas (and come back plain)
    assert M.breakeven_s(np.float64(0.001), np.float64(0.002)) == M.breakeven_s(0.001, 0.002)
    assert M.risk_level(np.float64(0.9), np.float64(3600.0)) == M.risk_level(0.9, 3600.0) == 0
    assert M.risk_level(0.6, 3600.0) == 1 and M.risk_level(0.4, 3600.0) == 2
