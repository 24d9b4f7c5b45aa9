"""`ftreg serve` under load, and its adapter swap next to a cold `ftreg generate`, on the embedded base.

Targets (issue 14): zero errors; resident memory steady; adapter swap p95 under 50 ms and at
least 20x faster than a cold `ftreg generate` (process start and load). A throwaway registry
gets three r=8 LoRA adapters (one training step each); the server runs as a subprocess on a
loopback port. All traffic goes to 127.0.0.1.
Run: .venv/bin/python bench/serve_load.py [--requests 500] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from timing import verdict, wall  # bench/ is on sys.path when a bench runs as a script

ADAPTERS = ("alpha", "beta", "gamma")
QUESTION = "Where is my order?"
SWAP_TARGET_S = 0.050


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def start_server(ftreg: str, env: dict, max_adapters: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([ftreg, "serve", "--port", str(port), "--max-adapters", str(max_adapters), "--preload", ",".join(f"{a}-v1" for a in ADAPTERS)],
                              env=env, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=5):
                return server, base_url
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--swaps", type=int, default=40)
    args = parser.parse_args()
    import openai
    from openai import OpenAI

    ftreg = str(Path(sys.executable).with_name("ftreg"))
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FTREG_HOME": home}
        for name in ADAPTERS:
            subprocess.run([ftreg, "train", "--quiet", "--strategy", "lora8bit", "-o", "r=8", "--dataset", "builtin:support", "--name", name, "--max-steps", "1", "--eval-split", "0"],
                           env=env, stdout=subprocess.DEVNULL, check=True)
        cold = wall([ftreg, "generate", "--adapter", "alpha-v1", "--greedy", "--max-new-tokens", "1", QUESTION], env, 3)

        # Swap: one adapter resident at a time, so every request alternating between two loads one.
        server, base_url = start_server(ftreg, env, max_adapters=1)
        try:
            client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60)
            timings: dict[str, list[float]] = {"swap": [], "same": []}
            for index in range(args.swaps):
                for kind, model in (("swap", ADAPTERS[index % 2] + "-v1"), ("same", ADAPTERS[index % 2] + "-v1")):
                    start = time.perf_counter()
                    client.completions.create(model=model, prompt=QUESTION, max_tokens=1, temperature=0)
                    timings[kind].append(time.perf_counter() - start)
        finally:
            server.terminate()
            server.wait()
        swap = percentile(timings["swap"], 0.95) - statistics.median(timings["same"])  # the swap itself, not the request around it

        # Load: every adapter resident, requests spread over them and the bare base.
        server, base_url = start_server(ftreg, env, max_adapters=len(ADAPTERS))
        try:
            client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
            models = [f"{a}-v1" for a in ADAPTERS] + ["tiny-gpt2-v1"]
            rss_start = rss_mib(server.pid)

            def one(index: int) -> tuple[float, bool]:
                start = time.perf_counter()
                try:
                    client.completions.create(model=models[index % len(models)], prompt=QUESTION, max_tokens=16, temperature=0)
                    return time.perf_counter() - start, True
                except openai.APIError:  # counted: a load test reports errors, it does not stop at the first
                    return time.perf_counter() - start, False

            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(one, range(args.requests)))
            elapsed = time.perf_counter() - started
            rss_end = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait()

    latencies = [seconds for seconds, _ in results]
    errors = sum(1 for _, ok in results if not ok)
    print(f"load: {args.requests} completions (16 tokens, greedy) at concurrency {args.concurrency} over {', '.join(models)}")
    print(f"  errors {errors}; latency p50 {percentile(latencies, .5) * 1000:.0f} ms, p95 {percentile(latencies, .95) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, .99) * 1000:.0f} ms; {args.requests / elapsed:.1f} requests/s")
    print(f"  server resident memory {rss_start:.0f} MiB at start, {rss_end:.0f} MiB at end")
    print(f"swap: p95 {swap * 1000:.1f} ms {verdict(swap, SWAP_TARGET_S)}; cold `ftreg generate` {cold:.2f} s: {cold / max(swap, 1e-6):.0f}x (target 20x)")
    sys.exit(0 if errors == 0 and swap < SWAP_TARGET_S and cold / max(swap, 1e-6) >= 20 else 1)


if __name__ == "__main__":
    main()
