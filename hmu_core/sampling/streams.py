"""One random stream per request (``RequestStreams``): the seed contract of the request loop.

Imports numpy only; what is drawn from each stream, in which order, is written in
``hmu_core.sampling.loop``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hmu_core.errors import ConfigError


class RequestStreams:
    """One numpy generator per request: ``np.random.default_rng(seed)`` (the order of the draws:
    ``hmu_core.sampling.loop``)."""

    def __init__(self, seeds: Sequence[int]) -> None:
        if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence | np.ndarray):
            raise ConfigError(f"seeds must be a list of ints >= 0, got {seeds!r}")
        seeds = list(seeds)
        if not seeds:
            raise ConfigError("need one seed per request, got none")
        for seed in seeds:
            if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
                raise ConfigError(f"seeds must be ints >= 0, got {seed!r}")
        self.seeds = [int(s) for s in seeds]
        self._rngs = [np.random.default_rng(s) for s in self.seeds]

    @classmethod
    def from_seed(cls, seed: int, count: int) -> RequestStreams:
        """Request i of a batch gets ``seed + i``: it equals a run of that prompt alone."""
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"seed must be an int >= 0, got {seed!r}")
        return cls([int(seed) + i for i in range(count)])

    def __len__(self) -> int:
        return len(self._rngs)

    def uniform(self, request: int, shape: Sequence[int]) -> np.ndarray:
        """Next ``U[0, 1)`` float64 draws of request ``request``."""
        return self._rngs[request].random(tuple(shape))

    def padded(self, lengths: np.ndarray, width: int, tail: Sequence[int] = ()) -> np.ndarray:
        """Draws ``(lengths[b], *tail)`` per request, stacked to ``(B, width, *tail)`` (0.5 at
        padding, which is never used): a request's draws do not depend on its batch."""
        out = np.full((len(lengths), width, *tail), 0.5)
        for b, n in enumerate(lengths):
            out[b, : int(n)] = self.uniform(b, (int(n), *tail))
        return out


def request_streams(seed: int, seeds: Sequence[int] | None, count: int) -> RequestStreams:
    """The streams of ``count`` requests: ``seed + i`` each, or the explicit ``seeds``.

    Raises:
        ConfigError: a bad seed, or not one seed per request.
    """
    streams = RequestStreams.from_seed(seed, count) if seeds is None else RequestStreams(seeds)
    if len(streams) != count:
        raise ConfigError(f"got {len(streams)} seeds for {count} prompts")
    return streams
