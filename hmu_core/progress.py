"""How far a long operation is: the one progress callback every long hmu operation takes.

Library code never prints a bar or imports tqdm: it reports ``progress(stage, done, total)``
(``done`` items of ``total`` finished in the stage named ``stage``; ``total`` is ``None`` when
unknown) and each front end shows it its own way: the CLI with one tqdm bar per stage
(``hmu_core.cli.common.ProgressBars``), Blender through the window manager's progress API and the
panel. ``done`` is absolute rather than an increment, so a report that is dropped or repeated
(a Blender timer tick, a resumed run) never skews the count.

This module is stdlib-only: the torch-free runtime and the Blender add-on use it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Progress = Callable[[str, int, "int | None"], None]
"""``progress(stage, done, total)``: called after each finished item of a stage."""

Item = TypeVar("Item")


def no_progress(stage: str, done: int, total: int | None) -> None:
    """Report nothing (the default of every library function)."""


def track(items: Iterable[Item], progress: Progress, stage: str,
          total: int | None = None) -> Iterator[Item]:
    """Yield ``items``, reporting ``(stage, done, total)`` after each one is processed.

    ``total`` defaults to ``len(items)`` where the iterable has a length. The report for an item
    comes when the consumer asks for the next one, i.e. after the loop body has finished it.
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    progress(stage, 0, total)
    for done, item in enumerate(items, start=1):
        yield item
        progress(stage, done, total)
