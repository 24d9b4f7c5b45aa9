"""Requests that arrive together, for different adapters of one base (or the bare base), generated as one batch.

A worker gathers a batch from the requests waiting, then waits (at most the window) for as many as
have lately been in flight at once: the clients it has been serving, who come back as soon as they
are answered. A lone client is never held, and a busy server's clients do not settle into
half-full batches that stay apart.

Each group that shares a base and sampling settings is generated in one `generate` call, with
PEFT's per-row ``adapter_names``. Prompts are left-padded, so every row continues its own prompt;
a row is cut to its own ``max_new_tokens``, so a greedy answer equals the one the adapter gives
alone (a test checks it).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ftreg.errors import FtregError
from ftreg.inference.compose import Completion
from ftreg.inference.options import GenerationOptions
from ftreg.inference.pool import ModelPool, Served, active

BASE_ROW = "__base__"  # PEFT's name for "no adapter" in adapter_names
CLIENTS_MEMORY_S = 1.0  # how long a burst of concurrent requests keeps batches waiting for its clients


@dataclass
class _Request:
    reference: str
    encode: Callable[[Served], list[int]]
    options: GenerationOptions
    future: Future = field(default_factory=Future)


class Overloaded(FtregError):
    """More requests wait than the server takes (`max_queue`): the client should retry later."""


class Batcher:
    def __init__(self, pool: ModelPool, window_s: float = 0.025, max_batch: int = 8, max_queue: int = 64):
        self.pool, self.window_s, self.max_batch, self.max_queue = pool, window_s, max_batch, max_queue
        self.requests: queue.Queue[_Request] = queue.Queue()
        self.sizes: Counter[int] = Counter()  # how many rows each generate call had: what batching bought
        self.on_batch: Callable[[int], None] = lambda size: None  # told each batch's size (for metrics)
        self._counting = threading.Lock()
        self._in_flight = 0
        self._arrivals: deque[tuple[float, int]] = deque()  # (when, requests then in flight) over CLIENTS_MEMORY_S
        threading.Thread(target=self._work, daemon=True, name="ftreg-batcher").start()

    def complete(self, reference: str, encode: Callable[[Served], list[int]], options: GenerationOptions) -> tuple[Completion, int]:
        """One greedy or sampled completion of what ``encode`` renders for ``reference``, and the prompt's token count."""
        if self.requests.qsize() >= self.max_queue:
            raise Overloaded(f"{self.requests.qsize()} requests are waiting already (`max_queue` {self.max_queue}); retry later")
        request = _Request(reference, encode, options)
        with self._counting:
            self._in_flight += 1
            self._arrivals.append((time.monotonic(), self._in_flight))
        try:
            self.requests.put(request)
            return request.future.result()
        finally:
            with self._counting:
                self._in_flight -= 1

    def _clients(self) -> int:
        """The most requests in flight at once lately: how many a batch can expect to gather."""
        with self._counting:
            while self._arrivals and self._arrivals[0][0] < time.monotonic() - CLIENTS_MEMORY_S:
                self._arrivals.popleft()
            return max((count for _, count in self._arrivals), default=1)

    def _work(self) -> None:
        while True:
            batch = [self.requests.get()]
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.requests.get_nowait())
                    continue
                except queue.Empty:
                    left = deadline - time.monotonic()
                if left <= 0 or len(batch) >= self._clients():
                    break
                try:
                    batch.append(self.requests.get(timeout=left))
                except queue.Empty:
                    break
            with self.pool.lock:
                self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        groups: dict[tuple, list[tuple[_Request, Served, list[int]]]] = {}
        for request in batch:
            if request.future.set_running_or_notify_cancel():
                try:
                    served = self.pool.prepare(self.pool.registry.resolve(request.reference))
                    ids = request.encode(served)
                except Exception as error:  # noqa: BLE001 - handed to the request's caller, who turns it into an HTTP error
                    request.future.set_exception(error)
                    continue
                key: tuple[Any, ...] = (served.base.resolved.fingerprint, _sampling(request.options))
                group = groups.setdefault(key, [])
                slots = {s.adapter for _, s, _ in group if s.adapter is not None} | {served.adapter}  # the bare base takes no slot
                if served.adapter is not None and len(slots) > self.pool.max_adapters:
                    key = (*key, len(groups))  # more adapters than stay loaded at once: a batch of its own
                    group = groups.setdefault(key, [])
                group.append((request, served, ids))
        for group in groups.values():
            try:
                self._generate(group)
            except Exception as error:  # noqa: BLE001 - a bug shows as a 500 for these requests, not as a dead worker
                for request, _, _ in group:
                    if not request.future.done():
                        request.future.set_exception(error)

    def _generate(self, group: list[tuple[_Request, Served, list[int]]]) -> None:
        import torch

        # Prepared again, together: a request of another group may have evicted an adapter of this one
        # (or refilled its slot), and the group's adapters fit in the pool at once.
        prepared = [self.pool.prepare(each.entry) for _, each, _ in group]
        served = prepared[-1]
        model, eos = served.base.model, served.base.tokenizer.eos_token_id
        width = max(len(ids) for _, _, ids in group)
        input_ids = torch.tensor([[eos] * (width - len(ids)) + ids for _, _, ids in group])
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, _, ids in group])
        options = group[0][0].options
        adapters = [each.adapter or BASE_ROW for each in prepared]
        # One adapter for every row: switched on once, since PEFT's per-row routing costs more than a switch.
        rows = {"adapter_names": adapters} if served.base.adapters and len(set(adapters)) > 1 else {}
        sampling = {} if options.greedy else {"temperature": options.temperature, "top_p": options.top_p, "top_k": options.top_k}
        self.sizes[len(group)] += 1
        self.on_batch(len(group))
        with torch.no_grad(), active(served) if not rows else contextlib.nullcontext():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                do_sample=not options.greedy,
                max_new_tokens=max(request.options.max_new_tokens for request, _, _ in group),
                repetition_penalty=options.repetition_penalty,
                pad_token_id=eos,
                **rows,
                **sampling,
            )
        for (request, each, ids), row in zip(group, output):
            tokens = row[width:].tolist()[: request.options.max_new_tokens]
            request.future.set_result((each.composed.completion(tokens, request.options, ()), len(ids)))


def _sampling(options: GenerationOptions) -> tuple[Any, ...]:
    """What rows of one batch must share: everything but the prompt and its length limit."""
    return (options.greedy, options.repetition_penalty) + (() if options.greedy else (options.temperature, options.top_p, options.top_k))
