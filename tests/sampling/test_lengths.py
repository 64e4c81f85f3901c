"""The token range and durations (``hmu_core.sampling.lengths``) and the request-length rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hmu_core.errors import ConfigError
from hmu_core.sampling.lengths import (
    HUMANML3D,
    MAX_FRAMES,
    MAX_TOKENS,
    MIN_TOKENS,
    UNIT_LENGTH,
    TokenRange,
    request_lengths,
    tokens_for_frames,
    tokens_from_seconds,
)


def test_the_humanml3d_range():
    assert (UNIT_LENGTH, MIN_TOKENS, MAX_TOKENS, MAX_FRAMES) == (4, 10, 49, 196)
    assert (HUMANML3D.fps, HUMANML3D.min_seconds, HUMANML3D.max_seconds) == (20, 2.0, 9.8)
    assert HUMANML3D.describe() == "2..9.8 s (40..196 frames at 20 fps)"


def test_tokens_from_seconds():
    assert [tokens_from_seconds(s) for s in (2.0, 4.0, 9.8, 3.1)] == [10, 20, 49, 16]
    # the edges round half up: 1.9 s is 9.5 tokens -> 10; 9.9 s is 49.5 -> out of range
    assert tokens_from_seconds(1.9) == 10
    with pytest.raises(ConfigError, match=r"9.9 s is 198 frames at 20 fps; the model makes "
                                          r"40..196 frames \(2..9.8 s\)"):
        tokens_from_seconds(9.9)
    # numpy scalars and 0-d arrays are numbers; float32's 3.1 is just below the 15.5 tie
    assert tokens_from_seconds(np.float32(3.0)) == tokens_from_seconds(np.array(3.0)) == 15
    assert tokens_from_seconds(np.float32(3.1)) == 15
    half = TokenRange(fps=10.0, unit_length=2, min_tokens=1, max_tokens=5)
    assert tokens_from_seconds(1.0, half) == 5
    assert half.describe() == "0.2..1 s (2..10 frames at 10 fps)"


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, 1e308, "3", b"3", True,
                                 np.bool_(True), None, np.array([3.0])])
def test_bad_durations(bad):
    with pytest.raises(ConfigError, match=r"seconds|frames"):
        tokens_from_seconds(bad)


def test_tokens_for_frames_clips_to_the_range():
    assert [tokens_for_frames(f) for f in (0, 39, 40, 43, 44, 196, 199, 200, 10_000)] == \
        [10, 10, 10, 10, 11, 49, 49, 49, 49]


def test_request_lengths_forms():
    want = [10, 15, 22]
    for seconds in ([2.0, 3.0, 4.4], (2.0, 3.0, 4.4), np.array([2.0, 3.0, 4.4]),
                    [np.float32(2.0), np.float64(3.0), 4.4]):
        lens, source = request_lengths(seconds, None, 3)
        assert lens.tolist() == want and lens.dtype == np.int64 and source == "seconds"
    for scalar in (3.0, np.float32(3.0), np.array(3.0), 3, np.int64(3)):
        assert request_lengths(scalar, None, 2)[0].tolist() == [15, 15]
    for tokens in ([1, 15, 49], (1, np.int64(15), 49), np.array([1, 15, 49], np.uint8)):
        lens, source = request_lengths(None, tokens, 3)
        assert lens.tolist() == [1, 15, 49] and lens.dtype == np.int64 and source == "tokens"
    assert request_lengths(None, None, 3) == (None, "")


@pytest.mark.parametrize("seconds, tokens, match", [
    (2.0, [10], "not both"),
    ([2.0, 3.0], None, "got 2 durations for 1 prompts"),
    (np.array([[2.0]]), None, "seconds must be a number"),
    (None, 10, r"token lengths must be 1 ints in \[1, 49\] \(frames // 4\), one per prompt; "
               r"got 10"),
    (None, np.array(10), r"got array\(10\)"),
    (None, [True], r"got \[True\]"),
    (None, [np.bool_(True)], "token lengths"),
    (None, [10.0], "token lengths"),
    (None, [50], "token lengths"),
    (None, [[10]], "token lengths"),
    (None, [[10], [10, 11]], "token lengths"),
    (None, "10", "got '10'"),
])
def test_request_lengths_refusals(seconds, tokens, match):
    with pytest.raises(ConfigError, match=match):
        request_lengths(seconds, tokens, 1)
