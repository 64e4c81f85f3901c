"""The one progress callback: ``track`` reports absolute counts, ``ProgressBars`` shows one bar
per stage and survives a stage that restarts."""

from __future__ import annotations

from hmu_core.cli.common import ProgressBars
from hmu_core.progress import no_progress, track


def test_track_reports_absolute_counts_after_each_item() -> None:
    calls: list[tuple[str, int, int | None]] = []
    seen = []
    for item in track(["a", "b", "c"], lambda *r: calls.append(r), "letters"):
        seen.append((item, len(calls)))  # the report for an item comes after its body
    assert seen == [("a", 1), ("b", 2), ("c", 3)]
    assert calls == [("letters", 0, 3), ("letters", 1, 3), ("letters", 2, 3), ("letters", 3, 3)]


def test_track_takes_a_total_for_iterators_and_stops_early() -> None:
    calls: list[tuple[str, int, int | None]] = []
    for item in track(iter(range(10)), lambda *r: calls.append(r), "n"):
        if item == 1:
            break
    assert calls == [("n", 0, None), ("n", 1, None)]
    assert list(track(iter("xy"), no_progress, "quiet", total=2)) == ["x", "y"]


def test_progress_bars_open_one_bar_per_stage() -> None:
    with ProgressBars(hidden=True) as bars:
        bars("encoding", 0, 2)
        first = bars._bar
        bars("encoding", 2, 2)
        assert bars._bar is first and bars._done == 2
        bars("encoding", 1, 2)  # the stage ran again (the next model): a fresh bar
        assert bars._bar is not first and bars._done == 1
        bars("sampling", 3, None)
        assert bars._stage == "sampling" and bars._done == 3 and bars._bar.total is None
    assert bars._bar is None
