"""Registry scale: publish and resolve latency at 10, 1,000 and 10,000 versions, and 8 concurrent publishers.

Run as a module with ``publish HOME PREFIX COUNT`` it is one of the concurrent publishers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.suite import Context, Plot, Sample, Section, Table, Target
from ftreg.registry import Registry

TITLE = "Registry scale"
FLAT = 1.5  # "flat": the cost at the largest size within this factor of the cost at the smallest
PUBLISHERS = 8


def publish_versions(registry: Registry, count: int, prefix: str = "model", names: int = 10) -> list[float]:
    """Publish ``count`` small adapter versions spread over ``names`` names; the seconds each publish took."""
    import numpy as np
    from safetensors.numpy import save

    seconds = []
    for i in range(count):
        start = time.perf_counter()
        with registry.staging() as stage:
            # A small valid safetensors file (publish parses it), different for every version.
            (stage / "adapter_model.safetensors").write_bytes(save({"w": np.frombuffer(os.urandom(256), dtype=np.uint8).copy()}))
            registry.publish(
                stage, name=f"{prefix}-{i % names}", kind="adapter", base="tiny-gpt2-v1", strategy="lora8bit",
                metrics={"eval_loss": 1.0 + i / max(count, 1), "train_loss": 2.0}, config={"learning_rate": 2e-4, "epochs": 1},
            )
        seconds.append(time.perf_counter() - start)
    return seconds


def resolve_times(registry: Registry, count: int) -> list[float]:
    seconds = []
    for i in range(count):
        start = time.perf_counter()
        registry.resolve(f"model-{i % 10}")  # the latest version of a name with a tenth of the versions
        seconds.append(time.perf_counter() - start)
    return seconds


def run(context: Context) -> Section:
    sizes = (10, 100, 300) if context.quick else (10, 1000, 10000)
    probes = 5 if context.quick else 50
    home = context.home("registry-scale")
    registry = Registry(home)
    publish: dict[int, Sample] = {}
    resolve: dict[int, Sample] = {}
    for size in sizes:
        publish_versions(registry, size - len(registry.entries()))
        # Measured on a copy of the size: the probe versions are published, then counted in the next size.
        publish[size] = Sample([s * 1000 for s in publish_versions(registry, probes, prefix="probe")], "ms")
        resolve[size] = Sample([s * 1000 for s in resolve_times(registry, probes * 4)], "ms")
    registry.close()

    per_publisher = 5 if context.quick else 40
    alone, together = concurrent_throughput(context, 1, PUBLISHERS * per_publisher), concurrent_throughput(context, PUBLISHERS, per_publisher)
    smallest, largest = sizes[0], sizes[-1]
    targets = []
    for label, samples in (("publish", publish), ("resolve", resolve)):
        ratio = samples[largest].median / samples[smallest].median
        targets.append(Target(
            claim=f"registry {label} flat from {smallest:,} to {largest:,} versions (at most {FLAT}x)", issue=17,
            measured=f"{samples[largest].spread(3)} ms at {largest:,}", baseline=f"{samples[smallest].spread(3)} ms at {smallest:,}",
            ratio=f"{ratio:.2f}x", met=ratio <= FLAT,
        ))
    rows = [[f"{size:,}", publish[size].spread(3), resolve[size].spread(3)] for size in sizes]
    return Section(
        key="registry", title=TITLE,
        about=(
            f"A registry filled with small adapter versions (10 names) to each size; at each size, {probes} more publishes "
            f"and {probes * 4} resolves of a name's latest version are timed one by one (median and min-max in ms). "
            f"Then {PUBLISHERS} processes publish {per_publisher} versions each into one registry at once, against one process "
            f"publishing all {PUBLISHERS * per_publisher}."
        ),
        tables=[
            Table(["versions", "publish ms", "resolve ms"], rows),
            Table(["publishers", "versions", "versions/s"], [["1", f"{PUBLISHERS * per_publisher}", f"{alone:.0f}"], [f"{PUBLISHERS}", f"{PUBLISHERS * per_publisher}", f"{together:.0f}"]],
                  caption=f"Concurrent publishers: {together / alone:.2f}x the throughput of one, on {os.cpu_count()} cores."),
        ],
        targets=targets,
        plots=[Plot(
            name="registry-scale", title="Registry operations vs registry size", x_label="versions in the registry", y_label="ms (median)",
            series={"publish": [(size, publish[size].median) for size in sizes], "resolve": [(size, resolve[size].median) for size in sizes]},
            log_x=True,
        )],
    )


def concurrent_throughput(context: Context, publishers: int, each: int) -> float:
    """Versions per second of ``publishers`` processes publishing ``each`` versions into one fresh registry,
    from the first publisher's first publish to the last one's end (process start-up not counted)."""
    home = context.scratch / f"concurrent-{publishers}"
    go = time.time() + 2 + publishers  # every publisher has started and opened the registry by then
    children = [
        subprocess.Popen([context.python, "-m", "bench.registry", "publish", str(home), f"p{index}", str(each), str(go)],
                         stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
        for index in range(publishers)
    ]
    spans = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"a publisher exited with {child.returncode}")
        spans.append(json.loads(out))
    return publishers * each / (max(end for _, end in spans) - min(start for start, _ in spans))


def publisher(home: str, prefix: str, count: int, go: float) -> None:
    registry = Registry(home)
    registry.entries()  # open (and create) the registry before the clock starts
    time.sleep(max(0.0, go - time.time()))
    start = time.time()
    publish_versions(registry, count, prefix=prefix, names=1)
    print(json.dumps([start, time.time()]))


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        publisher(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
