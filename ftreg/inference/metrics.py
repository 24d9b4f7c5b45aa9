"""What one server did, in Prometheus text: requests by endpoint, model and status, tokens in and
out, latency, adapter swaps and evictions, batch sizes, queue depth and what is resident.

A model is labelled only once the registry knows it, so a client sending made-up names cannot grow
the label set without bound; a request for an unknown model is counted under ``model=""``.
"""

from __future__ import annotations

from typing import Any

from ftreg.inference.batching import Batcher
from ftreg.inference.pool import ModelPool


class ServerMetrics:
    def __init__(self, pool: ModelPool, batcher: Batcher):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()  # one per server: two servers in one process must not share counts
        self.requests = Counter("ftreg_requests", "Requests answered, by endpoint, model and HTTP status", ["endpoint", "model", "status"], registry=self.registry)
        self.seconds = Histogram("ftreg_request_seconds", "Time to answer a request (to its first byte for a stream)", ["endpoint"], registry=self.registry)
        self.prompt_tokens = Counter("ftreg_prompt_tokens", "Prompt tokens read, by model", ["model"], registry=self.registry)
        self.completion_tokens = Counter("ftreg_completion_tokens", "Tokens generated, by model (a stream's when it ends)", ["model"], registry=self.registry)
        self.loads = Histogram("ftreg_adapter_load_seconds", "Time to load an adapter that was not resident (a swap)", registry=self.registry,
                               buckets=(0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5))
        self.evictions = Counter("ftreg_adapter_evictions", "Adapters unloaded to make room for another", registry=self.registry)
        batch_sizes = Histogram("ftreg_batch_size", "Requests generated together", registry=self.registry, buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32))
        Gauge("ftreg_queue_depth", "Requests waiting for a batch", registry=self.registry).set_function(batcher.requests.qsize)
        Gauge("ftreg_resident_versions", "Bases and adapters loaded now", registry=self.registry).set_function(lambda: len(pool.resident()))
        pool.on_adapter_load = self.adapter_loaded
        batcher.on_batch = batch_sizes.observe

    def app(self) -> Any:
        """The ASGI app that answers a scrape."""
        from prometheus_client import make_asgi_app

        return make_asgi_app(registry=self.registry)

    def answered(self, endpoint: str, model: str, status: int, seconds: float | None) -> None:
        self.requests.labels(endpoint, model, str(status)).inc()
        if seconds is not None:
            self.seconds.labels(endpoint).observe(seconds)

    def tokens(self, model: str, prompt: int, completion: int) -> None:
        self.prompt_tokens.labels(model).inc(prompt)
        self.completion_tokens.labels(model).inc(completion)

    def adapter_loaded(self, seconds: float, evicted: bool) -> None:
        self.loads.observe(seconds)
        if evicted:
            self.evictions.inc()
