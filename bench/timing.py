"""What the benches share: the median wall time of a command, output discarded."""

from __future__ import annotations

import statistics
import subprocess
import time


def wall(command: list[str], env: dict, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def verdict(seconds: float, target_s: float) -> str:
    return ("ok" if seconds < target_s else "MISSED") + f" (< {target_s:g} s)"
