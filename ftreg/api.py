"""The Python API: everything the ``ftreg`` command line does, as functions (docs/python-api.md).

Every function takes the registry the same way: ``registry=`` a `Registry`, or None for the
default one (``$FTREG_HOME``, else the platform's user data directory). References are strings
(``support-v2``, ``support``, ``support@prod``) or entries. Heavy libraries load only inside the
functions that need them, so ``import ftreg`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftreg.bases.embedded import BaseRecipe, build_embedded_base, ensure_embedded_base
from ftreg.bases.resolve import context_length, resolve_base
from ftreg.contract import Entry, TrainSpec
from ftreg.datasets.check import check_report
from ftreg.datasets.loading import open_dataset
from ftreg.datasets.tokenizer import load_encoder
from ftreg.errors import ConfigError, FtregError
from ftreg.evaluation import compare as _compare
from ftreg.evaluation.comparison import Comparison
from ftreg.evaluation.evaluate import DEFAULT_MAX_NEW_TOKENS, Evaluation, open_eval_data
from ftreg.evaluation.evaluate import evaluate as _evaluate
from ftreg.evaluation.gate import Verdict, direction
from ftreg.evaluation.gate import tag_if_better as _tag_if_better
from ftreg.hub import pull as _pull
from ftreg.hub import push as _push
from ftreg.inference.compose import Composed, compose
from ftreg.inference.export import export as _export
from ftreg.inference.prompts import Prompter
from ftreg.inference.prompts import prompter as _prompter
from ftreg.registry import Registry
from ftreg.training import pipeline
from ftreg.training.config import effective_spec
from ftreg.training.pipeline import quiet as _quiet
from ftreg.training.runs import Run, list_runs, prunable

Notify = Callable[[str], None]


def _registry(registry: Registry | None) -> Registry:
    return registry if registry is not None else Registry()


def _entry(ref: str | Entry, registry: Registry) -> Entry:
    return ref if isinstance(ref, Entry) else registry.resolve(ref)


def settings(
    flags: dict[str, Any] | None = None,
    *,
    options: dict[str, Any] | None = None,
    config_file: str | Path | None = None,
    parent: str | Entry | None = None,
    registry: Registry | None = None,
) -> TrainSpec:
    """The effective settings of a run: defaults < ``parent``'s recorded settings < ``config_file`` < ``flags``.

    ``options`` are the strategy's own (``-o KEY=VALUE``); the result lists every option with its value.
    """
    parent_entry = _entry(parent, _registry(registry)) if parent is not None else None
    return effective_spec(flags or {}, options, Path(config_file) if config_file else None, parent_entry)


def train(
    spec: TrainSpec,
    *,
    registry: Registry | None = None,
    parent: str | Entry | None = None,
    show_progress: bool = True,
    notify: Notify = _quiet,
) -> Entry | None:
    """Train with ``spec`` and publish the next version of ``spec.name``; returns it.

    ``parent`` is the version whose settings this run re-used, kept as lineage. Returns None on the
    ranks of a distributed launch that do not publish.
    """
    registry = _registry(registry)
    parent_entry = _entry(parent, registry) if parent is not None else None
    return pipeline.train(spec, registry, show_progress=show_progress, notify=notify, parent=parent_entry)


def resume(run_id: str, *, registry: Registry | None = None, show_progress: bool = True, notify: Notify = _quiet) -> Entry | None:
    """Continue an interrupted or failed run (see `runs`) from its newest complete checkpoint."""
    return pipeline.resume(run_id, _registry(registry), show_progress=show_progress, notify=notify)


def runs(*, registry: Registry | None = None) -> list[Run]:
    """Every training run, oldest first: settings, status, newest checkpoint, what it published."""
    return list_runs(_registry(registry))


def load(
    adapter: str | Entry | None = None, *, base: str | None = None, prompt_format: str | None = None, lean: bool = False, registry: Registry | None = None
) -> Composed:
    """A model ready to ``.generate(prompt)``: ``adapter`` on its recorded base (or on ``base``), or ``base`` alone.

    Files are checked against their recorded hashes, and an adapter's recorded base fingerprint
    against the base, before any weights load. Prompts are rendered as the adapter's training data
    was (see `prompter`); ``prompt_format`` names a dataset format to render them with instead.

    ``lean`` runs a plain GPT-2 (and LoRA adapter) with torch alone where that computes the same
    answers, without importing transformers or peft: for a script that loads once, answers and
    exits. Its ``.model`` is then not a transformers model, and it completes one prompt at a time.
    """
    ref = adapter.ref if isinstance(adapter, Entry) else adapter
    return compose(_registry(registry), adapter=ref, base=base, prompt_format=prompt_format, lean=lean)


def prompter(adapter: str | Entry | None = None, *, base: str | None = None, prompt_format: str | None = None, registry: Registry | None = None) -> Prompter:
    """How `load` with the same arguments renders prompts, from the version's record alone: nothing loads.

    ``.render(prompt, system=..., input=..., messages=...)`` shows what generation sends and refuses
    what the model's format cannot render (a system prompt for a model not trained on chat data).
    """
    ref = adapter.ref if isinstance(adapter, Entry) else adapter
    return _prompter(_registry(registry), adapter=ref, base=base, prompt_format=prompt_format)


def export(ref: str | Entry, directory: str | Path, *, merge: bool = False, registry: Registry | None = None, notify: Notify = _quiet) -> Path:
    """Write a version to ``directory`` in plain Hugging Face layout; ``merge`` folds an adapter into its base."""
    registry = _registry(registry)
    return _export(registry, _entry(ref, registry).ref, Path(directory), merge=merge, notify=notify)


def push(
    ref: str | Entry,
    repo_id: str,
    *,
    private: bool = False,
    base_repo: str | None = None,
    merge: bool = False,
    registry: Registry | None = None,
    notify: Notify = _quiet,
) -> str:
    """Upload a version (checked first) to the Hub as one commit tagged ``vN``; returns the commit URL.

    An adapter whose base is only in this registry needs ``base_repo`` (the base is pushed there
    too) or ``merge`` (a standalone merged model is pushed instead), so that it loads anywhere.
    """
    registry = _registry(registry)
    return _push(registry, _entry(ref, registry), repo_id, private=private, base_repo=base_repo, merge=merge, notify=notify)


def pull(repo: str, name: str, *, trust_pickle: bool = False, registry: Registry | None = None, notify: Notify = _quiet) -> Entry:
    """Download ``OWNER/NAME[@REVISION]``, check it against its pushed hashes, and publish it as the next version of ``name``."""
    return _pull(_registry(registry), repo, name, trust_pickle=trust_pickle, notify=notify)


def check_dataset(
    source: str,
    *,
    format: str | None = None,
    columns: dict[str, str] | None = None,
    base: str | None = None,
    max_length: int = TrainSpec.max_length,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """A dataset as training would see it: format, example count, token lengths, truncation, one rendered example."""
    registry = _registry(registry)
    reader = open_dataset(source, format, columns)
    for _ in reader.examples():
        pass  # every problem of the data is reported before the base is resolved (which may publish it)
    resolved = resolve_base(base, registry)
    return {**check_report(reader, load_encoder(resolved.path), min(max_length, context_length(resolved.path))), "tokenizer": resolved.ref}


def evaluate(
    ref: str,
    dataset: str,
    *,
    format: str | None = None,
    limit: int | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    registry: Registry | None = None,
    show_progress: bool = False,
) -> Evaluation:
    """Loss, perplexity and every registered metric of ``ref`` on ``dataset``, stored with the version.

    Answers are greedy, at most ``max_new_tokens`` long; ``limit`` takes the first N examples. A
    repeated evaluation (same version, data fingerprint and settings) is read back, not measured.
    """
    registry = _registry(registry)
    registry.resolve(ref)  # an unknown reference fails before the data is read
    return _evaluate(registry, ref, open_eval_data(dataset, format, limit, max_new_tokens), show_progress)


def compare(
    refs: list[str],
    dataset: str,
    *,
    format: str | None = None,
    limit: int | None = None,
    samples: int = 3,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    registry: Registry | None = None,
    show_progress: bool = False,
) -> Comparison:
    """``refs`` evaluated on the same data, side by side, with ``samples`` answers next to their references."""
    registry = _registry(registry)
    for ref in refs:
        registry.resolve(ref)
    return _compare.compare(registry, refs, open_eval_data(dataset, format, limit, max_new_tokens), samples, show_progress)


def tag_if_better(
    ref: str,
    alias: str,
    metric: str,
    *,
    dataset: str | None = None,
    format: str | None = None,
    min_delta: float = 0.0,
    registry: Registry | None = None,
    show_progress: bool = False,
) -> Verdict:
    """Move NAME@``alias`` to ``ref`` only if it beats the alias's current version on ``metric`` by
    more than ``min_delta``, on ``dataset`` (evaluating whichever lacks the number) or, without one,
    on the newest data both were evaluated on. The verdict says what was compared."""
    registry = _registry(registry)
    direction(metric)  # an unknown metric fails before anything is read
    registry.resolve(ref)
    data = open_eval_data(dataset, format) if dataset else None
    return _tag_if_better(registry, ref, alias, metric, data, min_delta, show_progress)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    preload: list[str] | tuple[str, ...] = (),
    max_adapters: int = 8,
    max_bases: int = 1,
    api_key: str | None = None,
    batch_window_ms: float = 25.0,
    max_batch: int = 8,
    max_queue: int = 64,
    registry: Registry | None = None,
    notify: Notify = _quiet,
) -> None:
    """Serve the registry's versions over an OpenAI-compatible HTTP API until interrupted.

    One process holds each base once and switches adapters per request; ``preload`` loads
    versions before the first request; ``api_key`` makes every request send ``Authorization: Bearer KEY``.
    Requests waiting together (up to ``max_batch``) are generated as one batch, whichever adapters of
    a base they name; a batch waits up to ``batch_window_ms`` for as many requests as have lately
    been in flight at once; past ``max_queue`` waiting, requests get 429.
    """
    try:
        import uvicorn

        from ftreg.inference.server import create_app
    except ImportError as error:
        raise FtregError(f"serving needs its extras ({error.name} is missing): pip install 'ftreg[serve]'") from error
    from ftreg.inference.pool import ModelPool

    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        raise ConfigError(f"listening on {host} lets other machines in: set `api_key` first (or FTREG_API_KEY)")
    pool = ModelPool(_registry(registry), max_adapters=max_adapters, max_bases=max_bases)
    for reference in preload:
        with pool.serving(reference):
            pass
    notify(f"serving {len(pool.registry.entries())} versions on http://{host}:{port}/v1 ({', '.join(pool.resident()) or 'nothing'} loaded)")
    uvicorn.run(create_app(pool, api_key, batch_window_ms / 1000, max_batch, max_queue), host=host, port=port, log_level="warning")


def init_base(*, rebuild: bool = False, registry: Registry | None = None) -> Entry:
    """Publish the embedded tiny GPT-2 (once), or with ``rebuild`` pre-train it again from its recipe as a new version."""
    registry = _registry(registry)
    return build_embedded_base(registry, BaseRecipe()) if rebuild else ensure_embedded_base(registry)


def gc(*, remove: bool = False, registry: Registry | None = None) -> list[tuple[Path, str]]:
    """What nothing needs any more, with why: checkpoints of finished runs, store directories of no
    listed version, stale staging. Lists only; ``remove`` deletes them too. Resumable runs are kept."""
    import shutil

    registry = _registry(registry)
    runs_garbage = prunable(registry)
    if remove:
        for path, _ in runs_garbage:
            shutil.rmtree(path, ignore_errors=True)
    return runs_garbage + registry.garbage(remove=remove)
