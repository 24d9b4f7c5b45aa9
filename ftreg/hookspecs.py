"""The plugin contract. Each hook's docstring is its documentation (see docs/plugins.md).

A plugin is a module or object with functions decorated by ``ftreg.hookimpl`` and named after
these hooks. Plugins are found through the ``ftreg`` entry-point group; ftreg's own formats and
strategies are registered the same way, from ``ftreg.plugins``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from ftreg.formats import DatasetFormat
    from ftreg.training.strategy import TrainingStrategy

hookspec = pluggy.HookspecMarker("ftreg")
hookimpl = pluggy.HookimplMarker("ftreg")


@hookspec
def register_dataset_formats(register: Callable[[DatasetFormat], None]) -> None:
    """Register dataset formats by calling ``register(format)`` once per format.

    ``format`` is a ``ftreg.formats.DatasetFormat``: it has a unique ``name`` (used by
    ``--format``), a one-line ``description``, a ``prompt_template`` (``{prompt}`` marks the
    user's text; it is recorded with every version so generation wraps prompts the way training
    did), ``score(path, sample)`` for detection without ``--format``, and ``read(path, columns)``
    that returns validated examples or raises ``DatasetError`` naming file and line. Keep imports
    of heavy libraries inside its methods.
    """


@hookspec
def register_training_strategies(register: Callable[[TrainingStrategy], None]) -> None:
    """Register training strategies by calling ``register(strategy)`` once per strategy.

    ``strategy`` is a ``ftreg.training.TrainingStrategy``: it has a unique ``name`` (used by
    ``--strategy``), a ``kind`` (``"adapter"`` or ``"checkpoint"``), a one-line ``description``,
    ``check(spec)`` that rejects unusable settings before anything loads, and ``train(job)`` that
    writes the artifact files into ``job.output_dir`` (checkpoints into ``job.checkpoint_dir``
    every ``spec.save_steps``, continuing from ``job.resume_from`` when set) and returns a dict
    of metrics. The registry hashes and publishes what it wrote; the strategy never touches the
    store itself.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``ftreg`` command-line tool, e.g. with ``@cli.command()``.

    Called when the CLI starts, so import heavy libraries inside the command, not at module level.
    """
