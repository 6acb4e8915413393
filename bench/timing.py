"""The one timing loop of the benchmarks: warm up, then time each run with perf_counter."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timings(run: Callable[[], object], count: int, *, warmups: int = 1) -> list[float]:
    """Seconds of each of ``count`` runs, after ``warmups`` runs that are not counted."""
    for _ in range(warmups):
        run()
    measured = []
    for _ in range(count):
        started = time.perf_counter()
        run()
        measured.append(time.perf_counter() - started)
    return measured


def median_seconds(rounds: int, run: Callable[[], object]) -> float:
    """Median seconds of ``rounds`` runs after one warm-up."""
    return statistics.median(timings(run, rounds))
