"""Shards: one job of N independent ones (a SLURM array, Kubernetes indexed Jobs).

Job ``I`` of ``N`` takes the work items whose index is ``I`` mod ``N`` (round robin, so long
and short items spread evenly). ``hmu clips --shard I/N`` and ``hmu benchmark --shard I/N``
use it; their outputs are named per item, so shards never collide, and a final merge (clips)
or an unsharded run (benchmark, which reuses every cached evaluation) assembles the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hmu_core.errors import ConfigError


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based, as SLURM array and Kubernetes job indexes) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or isinstance(self.count, bool) or not isinstance(
                self.index, int) or not isinstance(self.count, int) or self.count < 1 \
                or not 0 <= self.index < self.count:
            raise ConfigError(f"shard {self.index}/{self.count}: give I/N with 0 <= I < N, "
                              f"e.g. --shard 0/4 .. 3/4 (SLURM: $SLURM_ARRAY_TASK_ID/N)")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` -> ``Shard(I, N)``; ``ConfigError`` otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if match is None:
            raise ConfigError(f"--shard {text!r}: give I/N with 0 <= I < N, e.g. 0/4")
        return cls(int(match[1]), int(match[2]))

    def owns(self, item: int) -> bool:
        """Whether work item number ``item`` is this shard's."""
        return item % self.count == self.index
