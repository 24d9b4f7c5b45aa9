"""`ftreg serve`: an OpenAI-compatible HTTP API over a `ModelPool`.

The request's ``model`` is a registry reference; prompts are rendered the way that version's
training data was. A chat request to a version trained on single-turn data takes one user
message (its template has no place for a dialogue), and is refused otherwise.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from ftreg.errors import ArtifactError, BaseMismatch, ConfigError, FtregError, UnknownReference
from ftreg.inference.batching import Batcher, Overloaded
from ftreg.inference.compose import Completion
from ftreg.inference.metrics import ServerMetrics
from ftreg.inference.options import GenerationOptions
from ftreg.inference.pool import ModelPool, PoolFull, Served

MAX_BODY_BYTES = 4 * 2**20  # far past any prompt the context holds


class Sampling(BaseModel):
    """The settings both endpoints share, with OpenAI's defaults (temperature 0 is greedy)."""

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    n: int = Field(default=1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    repetition_penalty: float = Field(default=1.0, gt=0)  # not OpenAI's: sent as an extra field

    def options(self, default_max_tokens: int) -> GenerationOptions:
        greedy = self.temperature == 0
        return GenerationOptions(
            max_new_tokens=self.max_tokens or default_max_tokens,
            temperature=self.temperature if not greedy else 1.0,
            top_p=self.top_p,
            top_k=0,  # OpenAI has no top-k: sample from the whole top-p mass
            repetition_penalty=self.repetition_penalty,
            greedy=greedy,
            seed=self.seed,
        )

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class CompletionRequest(Sampling):
    prompt: str | list[str]


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


def create_app(pool: ModelPool, api_key: str | None = None, batch_window_s: float = 0.025, max_batch: int = 8, max_queue: int = 64) -> FastAPI:
    app = FastAPI(title="ftreg", docs_url=None, redoc_url=None)
    batcher = Batcher(pool, batch_window_s, max_batch, max_queue)
    metrics = ServerMetrics(pool, batcher)
    app.mount("/metrics", metrics.app())

    @app.middleware("http")
    async def authenticate_and_count(request: Request, call_next: Any) -> Any:
        sent = request.headers.get("authorization", "").encode()
        if api_key is not None and not hmac.compare_digest(sent, f"Bearer {api_key}".encode()):  # constant time
            response = _error(ApiError(401, "missing or wrong API key (send Authorization: Bearer KEY)", "authentication_error"))
        elif int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            response = _error(ApiError(413, f"the request body is over {MAX_BODY_BYTES // 2**20} MiB"))
        else:
            started = time.perf_counter()
            response = await call_next(request)
            metrics.answered(request.url.path, getattr(request.state, "model", ""), response.status_code, time.perf_counter() - started)
            return response
        metrics.answered(request.url.path, "", response.status_code, None)
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error(error)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        data = []
        for entry in pool.registry.entries():
            created = int(time.mktime(time.strptime(entry.manifest["created_at"][:19], "%Y-%m-%dT%H:%M:%S"))) if entry.manifest.get("created_at") else 0
            ids = [entry.ref, *(f"{entry.name}@{alias}" for alias in entry.aliases)]
            data += [{"id": ref, "object": "model", "created": created, "owned_by": "ftreg", "parent": entry.base} for ref in ids]
        latest = {entry.name: entry for entry in pool.registry.entries()}  # a bare name serves its newest version
        data += [{"id": name, "object": "model", "created": 0, "owned_by": "ftreg", "parent": entry.base} for name, entry in latest.items()]
        return {"object": "list", "data": data}

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "resident": pool.resident()}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = _parse(CompletionRequest, request, await _json(request), pool)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            raise ApiError(400, "`prompt` is empty", param="prompt")
        # Generation blocks: run it on a worker thread so other requests (and their batch) keep coming in.
        return await run_in_threadpool(_respond, pool, batcher, metrics, body, "text_completion", [{"prompt": prompt} for prompt in prompts], 16)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = _parse(ChatRequest, request, await _json(request), pool)
        messages = [message.model_dump() for message in body.messages]
        return await run_in_threadpool(_respond, pool, batcher, metrics, body, "chat.completion", [{"messages": messages}], GenerationOptions.max_new_tokens)

    return app


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:  # a chunked upload has no content-length to refuse it by
        raise ApiError(413, f"the request body is over {MAX_BODY_BYTES // 2**20} MiB")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the request body is not JSON: {error}") from None


def _parse(model: type[Sampling], request: Request, payload: Any, pool: ModelPool) -> Any:
    """The request body, validated, for a model the registry knows (which then labels its metrics)."""
    try:
        body = model.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ApiError(400, f"{where}: {first['msg']}", param=where) from None
    try:
        pool.registry.resolve(body.model)
    except FtregError as error:
        raise _http_error(error) from error
    request.state.model = body.model
    return body


def _respond(pool: ModelPool, batcher: Batcher, metrics: ServerMetrics, body: Sampling, kind: str, requests: list[dict[str, Any]], default_max_tokens: int) -> Any:
    options = body.options(default_max_tokens)
    if body.stream and (body.n > 1 or len(requests) > 1):
        raise ApiError(400, "`stream` returns one completion: send `n` 1 and one prompt", param="stream")
    identifier = ("chatcmpl-" if kind == "chat.completion" else "cmpl-") + uuid.uuid4().hex
    if body.stream:
        return _streaming(pool, metrics, body, kind, requests[0], options, identifier)
    choices: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = 0
    for request in requests:
        if body.n == 1 and not body.stops() and body.seed is None:  # batched with whatever else arrives now
            completion, prompt_length = _batched(batcher, body.model, request, options)
            completions = [completion]
        else:  # several answers from one prompt, stop strings or a seed: a batch of its own
            with _serving(pool, body.model) as served:
                ids = _encode(served, request, options)
                completions, prompt_length = served.composed.complete(ids, options, n=body.n, stop=body.stops()), len(ids)
        for completion in completions:
            choices.append(_choice(kind, len(choices), completion))
            completion_tokens += completion.tokens
        prompt_tokens += prompt_length
    metrics.tokens(body.model, prompt_tokens, completion_tokens)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    return {"id": identifier, "object": kind, "created": int(time.time()), "model": body.model, "choices": choices, "usage": usage}


def _batched(batcher: Batcher, model: str, request: dict[str, Any], options: GenerationOptions) -> tuple[Completion, int]:
    try:
        return batcher.complete(model, lambda served: _encode(served, request, options), options)
    except FtregError as error:
        raise _http_error(error) from error


def _streaming(pool: ModelPool, metrics: ServerMetrics, body: Sampling, kind: str, request: dict[str, Any], options: GenerationOptions, identifier: str) -> StreamingResponse:
    """Server-sent events: a chunk per piece of text as it is generated, the finish reason, then [DONE].

    Everything that can be refused (the model, the prompt) is checked before the response starts,
    so a refusal is an HTTP error, not a broken stream.
    """
    from transformers import TextIteratorStreamer

    context = _serving(pool, body.model)
    served = context.__enter__()
    release = _Once(lambda: context.__exit__(None, None, None))
    try:
        ids = _encode(served, request, options)
    except BaseException:
        release()
        raise
    streamer = TextIteratorStreamer(served.base.tokenizer, skip_prompt=True, skip_special_tokens=True)
    result: list[Completion] = []
    chunk_kind = "chat.completion.chunk" if kind == "chat.completion" else "text_completion"
    created = int(time.time())

    def event(delta: str | None, finish: str | None = None, first: bool = False) -> str:
        if kind == "chat.completion":
            choice: dict[str, Any] = {"index": 0, "delta": {"role": "assistant", "content": ""} if first else {"content": delta} if delta else {}, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
        return "data: " + json.dumps({"id": identifier, "object": chunk_kind, "created": created, "model": body.model, "choices": [choice]}) + "\n\n"

    hung_up = threading.Event()  # the client went away: stop generating for nobody

    def generate() -> None:
        try:
            result.extend(served.composed.complete(ids, options, stop=body.stops(), streamer=streamer, cancel=hung_up))
        finally:
            release()
            metrics.tokens(body.model, len(ids), sum(completion.tokens for completion in result))

    # Started now, not when the body is first read: the worker alone releases the model, once it is
    # done, even if the client never reads a byte or hangs up halfway.
    worker = threading.Thread(target=generate, daemon=True)
    worker.start()

    def events() -> Iterator[str]:
        try:
            yield from chunks()
        finally:  # also when the client disconnects and the server closes this generator
            hung_up.set()

    def chunks() -> Iterator[str]:
        if kind == "chat.completion":
            yield event(None, first=True)
        stops = body.stops()
        # Held back: the longest text that could still turn out to begin a stop string.
        hold = max((len(stop) for stop in stops), default=1) - 1
        generated, sent = "", 0
        for piece in streamer:
            generated += piece
            visible = generated.lstrip()  # as a whole completion is stripped
            cut = min((visible.find(stop) for stop in stops if stop in visible), default=-1)
            end = cut if cut >= 0 else max(sent, len(visible) - hold)
            if end > sent:
                yield event(visible[sent:end])
                sent = end
            if cut >= 0:
                break
        worker.join()
        if cut < 0 and len(visible := generated.strip()) > sent:
            yield event(visible[sent:])
        yield event(None, result[0].finish_reason if result else "stop")
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


class _Once:
    """Calls ``action`` the first time it is called, and never again."""

    def __init__(self, action: Any):
        self.action: Any = action
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            action, self.action = self.action, None
        if action is not None:
            action()


class _serving:
    """`ModelPool.serving` with ftreg's errors turned into HTTP ones."""

    def __init__(self, pool: ModelPool, model: str):
        self.pool, self.model = pool, model
        self.context: Any = None

    def __enter__(self) -> Served:
        try:
            self.context = self.pool.serving(self.model)
            return self.context.__enter__()
        except FtregError as error:
            raise _http_error(error) from error

    def __exit__(self, *exc: Any) -> None:
        self.context.__exit__(*exc)


def _http_error(error: FtregError) -> ApiError:
    if isinstance(error, UnknownReference):
        return ApiError(404, str(error), "not_found_error", "model")
    if isinstance(error, (PoolFull, ArtifactError, BaseMismatch)):  # the model exists, but cannot be served as it is
        return ApiError(409, str(error), "server_error", "model")
    if isinstance(error, Overloaded):
        return ApiError(429, str(error), "rate_limit_error")
    return ApiError(400, str(error), param="model")


def _encode(served: Served, request: dict[str, Any], options: GenerationOptions) -> list[int]:
    messages = request.get("messages")
    try:
        if messages is not None and "messages" not in _extras(served):
            users = [m for m in messages if m["role"] == "user"]
            if len(messages) != 1 or len(users) != 1:
                raise ConfigError(f"{served.entry.ref} was trained on single-turn data: send one user message, not a dialogue (only chat-trained versions take one)")
            return served.composed.encode(users[0]["content"], options)
        return served.composed.encode(request.get("prompt"), options, messages=messages)
    except ConfigError as error:
        raise ApiError(400, str(error), param="messages" if messages is not None else "prompt") from error


def _extras(served: Served) -> tuple[str, ...]:
    found = served.composed.prompter.format
    if found is None:
        return ()
    from ftreg import plugins

    return plugins.get_dataset_format(found).generation_extras


def _choice(kind: str, index: int, completion: Completion) -> dict[str, Any]:
    if kind == "chat.completion":
        return {"index": index, "message": {"role": "assistant", "content": completion.text}, "finish_reason": completion.finish_reason}
    return {"index": index, "text": completion.text, "logprobs": None, "finish_reason": completion.finish_reason}


def _error(error: ApiError) -> JSONResponse:
    return JSONResponse({"error": {"message": error.message, "type": error.kind, "param": error.param, "code": None}}, status_code=error.status)
