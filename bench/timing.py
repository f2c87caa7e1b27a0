"""Timing helpers: warm up, calibrate, interleave, take medians.

Every figure of the suite is a comparison, so candidates are timed
*together*: :func:`compare` warms each one up, calibrates how many calls make
one sample (fast operations are timed in batches so that the resolution of
``perf_counter_ns`` and the loop itself stay negligible), then takes the
samples round-robin (A, B, C, then B, C, A ...) so that a slow patch of the
machine hurts every candidate alike. The garbage collector is paused during
a sample, as :mod:`timeit` does, and run between rounds, after which every
candidate runs once untimed so that none of them pays for the cold caches
a collection leaves behind.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any


@dataclass
class Stat:
    """Per-call timings of one candidate, in nanoseconds."""

    median_ns: float
    min_ns: float
    p90_ns: float
    samples: int
    calls_per_sample: int

    def as_dict(self) -> dict[str, Any]:
        return {"median_ns": round(self.median_ns, 1), "min_ns": round(self.min_ns, 1),
                "p90_ns": round(self.p90_ns, 1), "samples": self.samples,
                "calls_per_sample": self.calls_per_sample}


def _batch_ns(fn: Callable[[], Any], number: int) -> int:
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = perf_counter_ns()
        for _ in range(number):
            fn()
        return perf_counter_ns() - t0
    finally:
        if gc_was_enabled:
            gc.enable()


def calibrate(fn: Callable[[], Any], target_ns: int) -> int:
    """Return how many calls of ``fn`` take at least ``target_ns`` (1, 2, 5, 10 ...)."""
    number = 1
    while True:
        for factor in (1, 2, 5):
            n = number * factor
            if _batch_ns(fn, n) >= target_ns or n >= 1_000_000:
                return n
        number *= 10


def compare(candidates: dict[str, Callable[[], Any]], *, warmup: int = 5, repeat: int = 15,
            min_repeat: int = 3, target_ns: int = 2_000_000,
            budget_s: float = 30.0, equal_batches: bool = False) -> dict[str, Stat]:
    """Time every candidate, interleaved, and return their per-call statistics.

    ``repeat`` rounds are taken unless the whole comparison has used
    ``budget_s`` seconds, in which case it stops after ``min_repeat`` rounds
    (so that a pathologically slow candidate cannot stall the run; the
    number of samples is recorded with the result). ``equal_batches`` times
    every candidate in batches of the same size (the largest calibrated),
    for candidates of similar cost such as two versions of one page.
    """
    numbers: dict[str, int] = {}
    for name, fn in candidates.items():
        for _ in range(warmup):
            fn()
        numbers[name] = calibrate(fn, target_ns)
    if equal_batches:
        # The first call of a batch runs with the caches the previous candidate
        # left: a baseline calibrated to 5 calls a sample (against the
        # plugin's 2) spread that cost over more calls.
        numbers = dict.fromkeys(numbers, max(numbers.values()))
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    deadline = perf_counter_ns() + int(budget_s * 1e9)
    for round_no in range(repeat):
        # Each round starts with a different candidate, and every candidate
        # runs once untimed after the collection: gc.collect() walks the
        # whole heap and leaves the CPU caches cold, and whichever candidate
        # was timed first after it paid for that (the first of a figure's
        # candidates, which was always the plugin, measured up to 1.5x
        # slower than the same code timed second).
        order = names[round_no % len(names):] + names[:round_no % len(names)]
        for name in order:
            candidates[name]()
        for name in order:
            samples[name].append(_batch_ns(candidates[name], numbers[name]) / numbers[name])
        gc.collect()
        if round_no + 1 >= min_repeat and perf_counter_ns() > deadline:
            break
    out = {}
    for name, values in samples.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
        out[name] = Stat(statistics.median(values), ordered[0], p90, len(values), numbers[name])
    return out


def ratio(numerator: Stat, denominator: Stat) -> float:
    """Return the ratio of two medians, rounded for the report."""
    return round(numerator.median_ns / denominator.median_ns, 3)
