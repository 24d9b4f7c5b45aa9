"""Serving: adapter swaps next to a cold `ftreg generate`, and a load test one-at-a-time vs in mixed batches.

Servers run as subprocesses on loopback ports and all traffic goes to 127.0.0.1, through the
official openai client.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.suite import Context, Section, Table, Target, percentile, wall_seconds

TITLE = "Serving"
ADAPTERS = ("alpha", "beta", "gamma")
QUESTION = "Where is my order?"
SWAP_TARGET_S = 0.050
STEADY_MIB = 16  # resident memory may move this much under load (allocator noise), not grow with it


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(ftreg: str, env: dict, options: list[str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([ftreg, "serve", "--port", str(port), *options], env=env, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=5):
                return server, base_url
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the server did not start")


def swap_requests(client: object, refs: list[str], swaps: int) -> tuple[list[float], list[float]]:
    """Latencies of requests that must load their adapter (one resident at a time), and of the same
    request repeated at once, resident."""
    swapping: list[float] = []
    resident: list[float] = []
    for index in range(swaps):
        for times in (swapping, resident):
            start = time.perf_counter()
            client.completions.create(model=refs[index % 2], prompt=QUESTION, max_tokens=1, temperature=0)  # type: ignore[attr-defined]
            times.append(time.perf_counter() - start)
    return swapping, resident


def histogram_quantile(metrics: str, name: str, fraction: float) -> float:
    """A quantile of a Prometheus histogram, interpolated within its bucket as Prometheus's own
    `histogram_quantile` does."""
    buckets = [(float(line.split('le="')[1].split('"')[0]), float(line.rsplit(" ", 1)[1]))
               for line in metrics.splitlines() if line.startswith(f'{name}_bucket{{le="')]
    total = buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= fraction * total:
            return lower_bound + (bound - lower_bound) * (fraction * total - lower_count) / ((count - lower_count) or 1)
        lower_bound, lower_count = bound, count
    return float("inf")


def load(client: object, models: list[str], requests: int, concurrency: int, on_progress: object = None) -> tuple[list[float], int, float]:
    """Latencies, errors and wall time of ``requests`` completions spread over ``models``;
    ``on_progress`` is called after each completed quarter of them."""
    import openai

    def one(index: int) -> tuple[float, bool]:
        start = time.perf_counter()
        try:
            client.completions.create(model=models[index % len(models)], prompt=QUESTION, max_tokens=16, temperature=0)  # type: ignore[attr-defined]
            return time.perf_counter() - start, True
        except openai.APIError:  # counted: a load test reports errors, it does not stop at the first
            return time.perf_counter() - start, False

    started = time.perf_counter()
    results = []
    with ThreadPoolExecutor(concurrency) as threads:
        for result in threads.map(one, range(requests)):
            results.append(result)
            if on_progress is not None and len(results) % max(1, requests // 4) == 0:
                on_progress()  # type: ignore[operator]
    return [seconds for seconds, _ in results], sum(1 for _, ok in results if not ok), time.perf_counter() - started


def swaps(context: Context, env: dict, pairs: int) -> tuple[list[Target], list[list[str]]]:
    """Swap p95 against a cold `ftreg generate`, on the embedded base and (unless quick) on a 124M-sized one."""
    from openai import OpenAI

    setups = [("embedded base", env, ["alpha-v1", "beta-v1"])]
    if not context.quick:
        setups.append(("124M-sized base", context.env(context.big_adapters()), ["big-a-v1", "big-b-v1"]))
    targets, rows = [], []
    for label, setup_env, refs in setups:
        cold = [wall_seconds([context.ftreg, "generate", "--adapter", refs[0], "--greedy", "--max-new-tokens", "1", QUESTION], setup_env) for _ in range(1 if context.quick else 3)]
        server, base_url = start_server(context.ftreg, setup_env, ["--max-adapters", "1", "--preload", ",".join(refs)])
        try:
            swapping, resident = swap_requests(OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60), refs, pairs)
            with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10) as response:
                inside = histogram_quantile(response.read().decode(), "ftreg_adapter_load_seconds", 0.95)
        finally:
            server.terminate()
            server.wait()
        cold_s = sorted(cold)[len(cold) // 2]
        request_p95 = percentile(swapping, 0.95)
        rows.append([label, f"{inside * 1000:.1f}", f"{percentile(swapping, .5) * 1000:.0f}", f"{request_p95 * 1000:.0f}", f"{percentile(resident, .5) * 1000:.0f}", f"{cold_s:.2f}"])
        targets.append(Target(claim=f"adapter swap p95 under {SWAP_TARGET_S * 1000:.0f} ms and at least 20x faster than cold ({label})", issue=14,
                              measured=f"swap {inside * 1000:.1f} ms inside the server; a request that swaps: {request_p95 * 1000:.0f} ms",
                              baseline=f"cold `ftreg generate`: {cold_s:.2f} s", ratio=f"{cold_s / request_p95:.0f}x",
                              met=inside < SWAP_TARGET_S and cold_s / request_p95 >= 20))
    return targets, rows


def load_test(context: Context, env: dict, requests: int, concurrency: int) -> tuple[list[Target], list[list[str]]]:
    """The same load one request at a time and in mixed batches: errors, latency, throughput, memory."""
    from openai import OpenAI

    adapters = ADAPTERS[:2] if context.quick else ADAPTERS
    models = [f"{a}-v1" for a in adapters] + ["tiny-gpt2-v1"]
    throughput, rows, steady = {}, [], True
    for label, max_batch in (("one at a time", 1), ("mixed batches", concurrency)):
        server, base_url = start_server(context.ftreg, env, ["--max-adapters", str(len(adapters)), "--max-batch", str(max_batch), "--preload", ",".join(models)])
        try:
            client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
            rss = [rss_mib(server.pid)]
            load(client, models, 4 * concurrency, concurrency)  # warm-up: first batches allocate what later ones reuse
            rss.append(rss_mib(server.pid))
            latencies, errors, elapsed = load(client, models, requests, concurrency, lambda rss=rss, pid=server.pid: rss.append(rss_mib(pid)))
        finally:
            server.terminate()
            server.wait()
        throughput[label] = requests / elapsed
        growth = rss[-1] - rss[1]
        steady &= errors == 0 and growth <= STEADY_MIB
        rows.append([label, str(errors), *(f"{percentile(latencies, q) * 1000:.0f}" for q in (.5, .95, .99)), f"{throughput[label]:.1f}",
                     f"{rss[1]:.0f} -> {rss[-1]:.0f} ({growth:+.0f})"])
    ratio = throughput["mixed batches"] / throughput["one at a time"]
    targets = [
        Target(claim=f"mixed-batch throughput at least 2x one request at a time (concurrency {concurrency})", issue=14, measured=f"{throughput['mixed batches']:.1f} requests/s",
               baseline=f"one at a time: {throughput['one at a time']:.1f} requests/s", ratio=f"{ratio:.2f}x", met=ratio >= 2),
        Target(claim=f"no errors and steady memory under load (at most +{STEADY_MIB} MiB after warm-up)", issue=14, measured="; ".join(f"{row[0]}: {row[1]} errors, {row[-1]} MiB" for row in rows),
               baseline="", ratio="", met=steady),
    ]
    return targets, rows


def run(context: Context) -> Section:
    swaps_per_base = 4 if context.quick else 40
    requests, concurrency = (16, 8) if context.quick else (240, 8)
    home = context.home("serving")
    env = context.env(home)
    context.train_adapters(home, ADAPTERS[:2] if context.quick else ADAPTERS)
    swap_targets, swap_rows = swaps(context, env, swaps_per_base)
    load_targets, load_rows = load_test(context, env, requests, concurrency)
    return Section(
        key="serving", title=TITLE,
        about=(
            f"Adapter swaps: a server holding one adapter at a time (`--max-adapters 1`) answers {swaps_per_base} requests (one token, greedy) that each must load "
            "their r=8 LoRA adapter, each followed by the same request with the adapter resident; the swap inside the server is the p95 of its "
            "`ftreg_adapter_load_seconds` histogram, against a cold `ftreg generate` of the same adapter (process start and load).\n\n"
            f"Load test: {requests} completions (16 tokens, greedy) at concurrency {concurrency}, spread over {2 if context.quick else len(ADAPTERS)} adapters and the bare base, once with "
            "`--max-batch 1` and once in mixed batches; resident memory is the server's after a warm-up and at the end."
        ),
        tables=[
            Table(["base", "swap inside the server p95 ms", "swapping request p50 ms", "p95 ms", "resident request p50 ms", "cold generate s"], swap_rows),
            Table(["mode", "errors", "p50 ms", "p95 ms", "p99 ms", "requests/s", "resident MiB (warm -> end)"], load_rows),
        ],
        targets=swap_targets + load_targets,
    )
