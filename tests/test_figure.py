"""The one log-axis rule of every plot (results/figure.py) and the one decoder of code columns
(results/codes.py)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from atleus_dist.results.codes import decode
from atleus_dist.results.figure import LOG_AXIS_RATIO, spans_decades


def test_a_log_axis_needs_two_decades_of_positive_numbers():
    assert LOG_AXIS_RATIO == 100
    assert spans_decades([1, 100]) and spans_decades(np.array([0.5, 3.0, 50.0]))
    assert not spans_decades([1, 99.9])            # less than two decades: linear reads fine
    assert not spans_decades([5])                  # one value: nothing to span
    assert not spans_decades([0, 1, 1000])         # a log axis would silently drop the zero
    assert not spans_decades([-1, 1, 1000])
    assert not spans_decades([1, 1000, math.nan])
    assert not spans_decades([1, "1000"]) and not spans_decades([True, 1000])


def test_codes_decode_to_the_whole_table_with_unknown_codes_named():
    arr = decode(np.array([2, 0, 7, 2]), {0: "fwd", 1: "bwd", 2: "update"}, "phase")
    assert arr.to_pylist() == ["update", "fwd", "phase7", "update"]
    assert arr.dictionary.to_pylist() == ["fwd", "bwd", "update", "phase7"]  # code order, whole table
    assert decode(pa.chunked_array([pa.array([1], pa.int8())]), {1: "x"}, "k").to_pylist() == ["x"]
    assert decode(np.zeros(0, np.int64), {0: "a"}, "k").dictionary.to_pylist() == ["a"]
