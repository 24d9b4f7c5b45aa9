"""Every hook a plugin can implement. Each docstring is its documentation (see docs/plugins.md).

A plugin is a module or object with functions decorated by ``ftreg.hookimpl`` and named after
these hooks; it may implement any subset, and take any subset of a hook's arguments. Plugins are
found through the ``ftreg`` entry-point group; ftreg's own formats, sources and strategies are
registered the same way, from ``ftreg.default_plugins``.

Registration hooks run once per process; event hooks run as things happen. An implementation that
raises is isolated: a registration hook's contributions from that call are dropped and the error
is shown by ``ftreg plugins``; an event hook's error becomes a warning naming the plugin, and
never undoes what happened (a version published stays published).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

from ftreg.contract import DatasetFormat, DatasetSource, Entry, Metric, TrainingStrategy, TrainJob

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("ftreg")
hookimpl = pluggy.HookimplMarker("ftreg")


# -- registration -------------------------------------------------------------------------------


@hookspec
def register_dataset_formats(register: Callable[[DatasetFormat], None]) -> None:
    """Register dataset formats by calling ``register(format)`` once per format.

    :param register: takes a `ftreg.formats.RecordFormat` (or, for a format that reads whole
        files itself, a `ftreg.formats.DatasetFormat`): a unique ``name`` (used by ``--format``),
        a one-line ``description``, a ``prompt_template`` (``{prompt}`` marks the user's text;
        recorded with every version so generation wraps prompts the way training did), and
        ``score_record(record)`` with ``segments(record)`` (one record of any source to one
        example, raising ``RecordProblem``), or ``score(path, sample)`` with ``read(path, columns)``.
        A format that renders system prompts, inputs or dialogues at generation lists them in
        ``generation_extras`` and overrides ``generation_prompt`` (and ``system_prompt``).
    """


@hookspec
def register_dataset_sources(register: Callable[[DatasetSource], None]) -> None:
    """Register dataset sources by calling ``register(source)`` once per source.

    :param register: takes a `ftreg.contract.DatasetSource`: a unique ``name``, a one-line
        ``description``, ``claims(text)`` (does this source understand the ``--dataset`` text?)
        and ``resolve(text)`` returning the local data (a `Path` to a file or directory, or a
        `ftreg.contract.ResolvedData` that also says how to name and fingerprint it). Local
        paths, ``builtin:NAME`` and Hub dataset ids (``OWNER/NAME[@REVISION][:SPLIT]``) are
        built-in sources registered the same way; a plugin's source is asked first.
    """


@hookspec
def register_training_strategies(register: Callable[[TrainingStrategy], None]) -> None:
    """Register training strategies by calling ``register(strategy)`` once per strategy.

    :param register: takes a `ftreg.training.TrainingStrategy`: a unique ``name`` (used by
        ``--strategy``), a ``kind`` (``"adapter"`` or ``"checkpoint"``), a one-line
        ``description``, an ``options_class`` (a `StrategyOptions` dataclass of its own settings,
        set with ``-o KEY=VALUE``), ``check(spec)`` that rejects unusable settings before anything
        loads, and ``train(job)`` that writes the artifact into ``job.output_dir`` and returns
        metrics. The registry hashes and publishes what it wrote; a strategy never touches the store.
    """


@hookspec
def register_metrics(register: Callable[[Metric], None]) -> None:
    """Register generation metrics by calling ``register(metric)`` once per metric.

    :param register: takes a `ftreg.contract.Metric`: a unique ``name`` (the key in evaluation
        results and the METRIC of ``ftreg tag --if-better``), a one-line ``description``,
        ``higher_is_better``, and ``score(predictions, references)``: one number for the whole
        dataset from the greedy answers and the reference answers (lists of strings of equal
        length). BLEU, ROUGE-L and exact match are built-in metrics registered the same way; loss
        and perplexity are measured from the model by every evaluation.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``ftreg`` command-line tool, e.g. with ``@cli.command()``.

    :param cli: the ``ftreg`` click group. Called when the CLI starts, so import heavy libraries
        inside the command, not at module level.
    """


# -- resolving ----------------------------------------------------------------------------------


@hookspec(firstresult=True)
def resolve_base(reference: str) -> Path | None:
    """Turn a ``--base`` reference this plugin understands into a local model directory.

    Asked before the Hub, after registry references and local directories; the first plugin to
    return a path wins. The directory must be in Hugging Face layout (``config.json``, weights,
    tokenizer); adapters record its fingerprint, so it must hold the same files each time.

    :param reference: the ``--base`` text, e.g. ``mycloud://models/gpt2-support``.
    :returns: the directory, or None to leave the reference to others.
    """


# -- training lifecycle -------------------------------------------------------------------------


@hookspec
def on_train_start(job: TrainJob) -> None:
    """A strategy is about to train: the data is read, the base resolved, nothing trained yet.

    :param job: what the strategy receives: ``spec``, ``options``, ``base``, the encoded
        ``train`` and ``eval`` examples, ``output_dir``, ``checkpoint_dir``, ``resume_from``.
    """


@hookspec
def on_train_log(job: TrainJob, step: int, metrics: dict[str, float]) -> None:
    """The strategy logged: every ``logging_steps`` optimizer steps, and at each evaluation.

    :param job: the job being trained (as in ``on_train_start``).
    :param step: the optimizer step the metrics belong to.
    :param metrics: numbers by name, e.g. ``{"loss": 2.1, "learning_rate": 2e-4}`` or ``{"eval_loss": 2.4}``.
    """


@hookspec
def on_train_end(job: TrainJob, metrics: dict[str, float]) -> None:
    """The strategy finished training and wrote its artifact; publishing comes next.

    :param job: the job that was trained (as in ``on_train_start``).
    :param metrics: the run's final metrics, as the version will record them.
    """


# -- registry events ----------------------------------------------------------------------------


@hookspec
def version_published(entry: Entry) -> None:
    """A version was published (trained, pulled, or the embedded base); it is committed already.

    :param entry: the new version: ``ref``, ``name``, ``version``, ``kind``, ``path``, ``manifest``.
    """


@hookspec
def alias_moved(name: str, alias: str, entry: Entry | None) -> None:
    """``name@alias`` was pointed at a version, or removed.

    :param name: the model name.
    :param alias: the alias, e.g. ``prod``.
    :param entry: the version it now points at; None when the alias was removed.
    """


@hookspec
def version_removed(entry: Entry) -> None:
    """A version was removed from the registry (its files are gone).

    :param entry: the version as it was before removal.
    """
