"""`ftreg serve`: adapter swaps next to a cold `ftreg generate`, and a load test one-at-a-time vs in mixed batches.

Targets (issue 14): adapter swap p95 under 50 ms and at least 20x faster than a cold
`ftreg generate` (process start and load), on the embedded base and on a GPT-2-124M-shaped one
(random weights); zero errors and steady resident memory under load (after a warm-up, within
16 MiB); mixed-batch throughput at
least 2x one-request-at-a-time at concurrency 8. A throwaway registry gets r=8 LoRA adapters
(one training step each); servers run as subprocesses on loopback ports, and all traffic goes
to 127.0.0.1.
Run: .venv/bin/python bench/serve_load.py [--part swap|load|all] [--requests 500] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
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
STEADY_MIB = 16  # resident memory may move this much under load (allocator noise), not grow with it


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


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
    raise SystemExit("the server did not start")


def train_adapters(ftreg: str, env: dict, names: tuple[str, ...], base: list[str]) -> None:
    for name in names:
        subprocess.run([ftreg, "train", "--quiet", "--strategy", "lora8bit", "-o", "r=8", "--dataset", "builtin:support", "--name", name,
                        "--max-steps", "1", "--batch-size", "2", "--eval-split", "0", *base], env=env, stdout=subprocess.DEVNULL, check=True)


def big_base(directory: Path, embedded: Path) -> Path:
    """A GPT-2-124M-shaped model (12 layers, 768 wide) with random weights and the embedded base's tokenizer."""
    import shutil

    from transformers import GPT2Config, GPT2LMHeadModel

    from ftreg.engines.quiet import no_loading_bars

    no_loading_bars()
    special = json.loads((embedded / "config.json").read_text())
    config = GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024, vocab_size=special["vocab_size"],
                        bos_token_id=special["bos_token_id"], eos_token_id=special["eos_token_id"])
    GPT2LMHeadModel(config).save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(embedded / name, directory / name)
    return directory


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


def swaps(ftreg: str, env: dict, home: Path, pairs: int) -> bool:
    """Swap p95 against a cold `ftreg generate`, on the embedded base and on a 124M-shaped one."""
    from openai import OpenAI

    embedded = Path(json.loads(subprocess.run([ftreg, "show", "tiny-gpt2", "--json"], env=env, capture_output=True, text=True, check=True).stdout)["path"])
    train_adapters(ftreg, env, ("big-a", "big-b"), ["--base", str(big_base(home / "gpt2-124m-shaped", embedded))])
    ok = True
    print(f"swap: {pairs} requests that load their r=8 adapter (one resident at a time), each followed by the same one resident")
    for label, refs in (("embedded base", ["alpha-v1", "beta-v1"]), ("124M-shaped base", ["big-a-v1", "big-b-v1"])):
        cold = wall([ftreg, "generate", "--adapter", refs[0], "--greedy", "--max-new-tokens", "1", QUESTION], env, 3)
        server, base_url = start_server(ftreg, env, ["--max-adapters", "1", "--preload", ",".join(refs)])
        try:
            swapping, resident = swap_requests(OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60), refs, pairs)
            with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10) as response:
                inside = histogram_quantile(response.read().decode(), "ftreg_adapter_load_seconds", 0.95)
        finally:
            server.terminate()
            server.wait()
        request_p95 = percentile(swapping, 0.95)
        ok &= inside < SWAP_TARGET_S and cold / request_p95 >= 20
        print(f"  {label}: swap inside the server p95 {inside * 1000:.1f} ms {verdict(inside, SWAP_TARGET_S)}; a request that swaps: "
              f"p50 {percentile(swapping, .5) * 1000:.0f} ms, p95 {request_p95 * 1000:.0f} ms (resident: p50 {percentile(resident, .5) * 1000:.0f} ms); "
              f"cold `ftreg generate` {cold:.2f} s, {cold / request_p95:.0f}x the swapping request's p95 (target 20x)")
    return ok


def load_test(ftreg: str, env: dict, requests: int, concurrency: int, window_ms: float) -> bool:
    """The same load one request at a time and in mixed batches: errors, latency, throughput, memory."""
    from openai import OpenAI

    models = [f"{a}-v1" for a in ADAPTERS] + ["tiny-gpt2-v1"]
    ok = True
    print(f"load: {requests} completions (16 tokens, greedy) at concurrency {concurrency} over {', '.join(models)}")
    throughput = {}
    for label, max_batch in (("one at a time", 1), ("mixed batches", concurrency)):
        batching = ["--max-batch", str(max_batch), "--batch-window-ms", str(window_ms)]
        server, base_url = start_server(ftreg, env, ["--max-adapters", str(len(ADAPTERS)), *batching, "--preload", ",".join(models)])
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
        ok &= errors == 0 and growth <= STEADY_MIB
        print(f"  {label:<14} errors {errors}; p50 {percentile(latencies, .5) * 1000:.0f} ms, p95 {percentile(latencies, .95) * 1000:.0f} ms, "
              f"p99 {percentile(latencies, .99) * 1000:.0f} ms; {throughput[label]:.1f} requests/s")
        print(f"  {'':<14} resident MiB: {rss[0]:.0f} loaded, {rss[1]:.0f} warm, then {' '.join(f'{value:.0f}' for value in rss[2:])} "
              f"at each quarter ({growth:+.0f} MiB under load, target at most +{STEADY_MIB})")
    ratio = throughput["mixed batches"] / throughput["one at a time"]
    print(f"  mixed batches vs one at a time: {ratio:.2f}x (target 2x)")
    return ok and ratio >= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("swap", "load", "all"), default="all")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--swaps", type=int, default=40)
    parser.add_argument("--batch-window-ms", type=float, default=25.0, help="the server's batching window in the mixed-batch run")
    args = parser.parse_args()
    ftreg = str(Path(sys.executable).with_name("ftreg"))
    ok = True
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FTREG_HOME": home}
        train_adapters(ftreg, env, ADAPTERS, [])
        if args.part in ("swap", "all"):
            ok &= swaps(ftreg, env, Path(home), args.swaps)
        if args.part in ("load", "all"):
            ok &= load_test(ftreg, env, args.requests, args.concurrency, args.batch_window_ms)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
