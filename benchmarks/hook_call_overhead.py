"""What firing a hook costs the engine, per call, through the façade and through bare pluggy.

    python benchmarks/hook_call_overhead.py [--calls 200000]

Prints one JSON object with microseconds per call of ``Hooks.task_started`` when no plugin
implements the hook (the common case: the façade skips pluggy) and when one does, next to the
bare ``pm.hook.ember_task_started(task=...)`` call with no implementation, plus the cost of
``get_plugin_manager()`` and of ``load_component`` (first call, then cached).
"""

from __future__ import annotations

import argparse
import json
import time
import timeit

from ember import hookimpl
from ember._hooks import Hooks
from ember.events import TaskInfo
from ember.plugins import _reset_caches, get_plugin_manager, load_component


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def ember_task_started(self, task: TaskInfo) -> None:
        self.calls += 1


def per_call_us(fn, calls: int) -> float:
    return min(timeit.repeat(fn, number=calls, repeat=5)) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=200_000)
    args = ap.parse_args()
    task = TaskInfo(stage_id=0, partition=0, attempt=0, worker=None, launch_time=0.0)

    start = time.perf_counter()
    pm = get_plugin_manager()
    build_ms = (time.perf_counter() - start) * 1e3
    hooks = Hooks(pm)
    facade_empty = per_call_us(lambda: hooks.task_started(task), args.calls)
    pluggy_empty = per_call_us(lambda: pm.hook.ember_task_started(task=task), args.calls)
    hooks.register(Counter())
    facade_one = per_call_us(lambda: hooks.task_started(task), args.calls)
    baseline = per_call_us(lambda: None, args.calls)

    _reset_caches()
    start = time.perf_counter()
    load_component("serializers", "pickle")
    first_load_ms = (time.perf_counter() - start) * 1e3
    cached_us = per_call_us(lambda: load_component("serializers", "pickle"), args.calls)

    print(
        json.dumps(
            {
                "benchmark": "hook_call_overhead",
                "calls": args.calls,
                "us_per_call_facade_no_impl": round(facade_empty, 3),
                "us_per_call_pluggy_no_impl": round(pluggy_empty, 3),
                "us_per_call_facade_one_impl": round(facade_one, 3),
                "us_per_call_empty_lambda": round(baseline, 3),
                "ms_get_plugin_manager": round(build_ms, 2),
                "ms_load_component_first": round(first_load_ms, 2),
                "us_load_component_cached": round(cached_us, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
