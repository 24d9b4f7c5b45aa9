"""pytest fixtures for testing ftreg plugins (and ftreg itself), and a fake strategy that trains nothing.

Use them from a plugin package's tests with ``pytest_plugins = ["ftreg.testing"]`` in its
``conftest.py``:

- ``ftreg_home``: a fresh, empty registry directory, set as ``$FTREG_HOME`` for the test.
- ``registry``: a `Registry` on it.
- ``embedded_base``: that registry with the shipped tiny GPT-2 published (``tiny-gpt2-v1``).
- ``register_plugin(plugin, name)``: register a plugin object or module for one test only.
- ``fake_strategies``: registers ``fake-adapter`` and ``fake-checkpoint``, strategies that write a
  valid adapter (a LoRA whose update is zero) or checkpoint (the base's own weights) instantly,
  so a test can publish, show, generate and export without training.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ftreg import plugins
from ftreg.contract import Entry, StrategyOptions, TrainingStrategy, TrainJob, option
from ftreg.errors import ConfigError
from ftreg.hookspecs import hookimpl
from ftreg.registry import Registry

# GPT-2's projections a LoRA adapter targets, with (input, output) widths in units of n_embd.
_LORA_SHAPES = {"attn.c_attn": (1, 3), "attn.c_proj": (1, 1), "mlp.c_fc": (1, 4), "mlp.c_proj": (4, 1)}
_BASE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json", "generation_config.json")


@pytest.fixture
def ftreg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty registry directory for this test, also set as $FTREG_HOME."""
    home = tmp_path / "ftreg-home"
    monkeypatch.setenv("FTREG_HOME", str(home))
    return home


@pytest.fixture
def registry(ftreg_home: Path) -> Iterator[Registry]:
    registry = Registry(ftreg_home)
    yield registry
    registry.close()


@pytest.fixture
def embedded_base(registry: Registry) -> Entry:
    """This test's registry, holding the shipped embedded base as tiny-gpt2-v1."""
    from ftreg.bases.embedded import ensure_embedded_base

    return ensure_embedded_base(registry)


@pytest.fixture
def register_plugin() -> Iterator[Callable[[object, str], None]]:
    """Register a plugin object for one test only: ``register_plugin(plugin, "name")``."""
    names: list[str] = []

    def register(plugin: object, name: str) -> None:
        plugins.load_plugins()
        plugins.register(plugin, name)
        names.append(name)

    yield register
    for name in names:
        plugins.unregister(name)


@dataclass(frozen=True)
class FakeOptions(StrategyOptions):
    loss: float = option(1.0, "The training loss the fake run reports at every step.")
    steps: int = option(3, "How many steps the fake run logs.")
    poison: bool = option(False, "Write weights holding NaN, as a diverged run would.")

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"fake option steps must be >= 1, got {self.steps!r}")


class FakeStrategy(TrainingStrategy):
    """Trains nothing; writes a valid artifact for the job's base and reports ``options.loss``."""

    options_class = FakeOptions

    def __init__(self, kind: str):
        self.kind = kind  # type: ignore[assignment]
        self.name = f"fake-{kind}"
        self.description = f"writes a valid {kind} instantly, for tests"

    def train(self, job: TrainJob) -> dict[str, float]:
        assert isinstance(job.options, FakeOptions)
        for step in range(1, job.options.steps + 1):
            job.log(step, {"loss": job.options.loss})
        if self.kind == "adapter":
            write_zero_lora(job.base.path, job.output_dir, poison=job.options.poison)
        else:
            for name in _BASE_FILES:
                if (job.base.path / name).is_file():
                    shutil.copyfile(job.base.path / name, job.output_dir / name)
        losses = [[step, job.options.loss] for step in range(1, job.options.steps + 1)]
        (job.output_dir / "train_log.json").write_text(json.dumps({"train": losses, "eval": []}) + "\n")
        return {"train_loss": job.options.loss, "train_steps": float(job.options.steps)}


def write_zero_lora(base: Path, out: Path, rank: int = 2, poison: bool = False) -> None:
    """A LoRA adapter for the GPT-2 in ``base`` whose B matrices are zero: valid, and a no-op (NaN with ``poison``)."""
    import numpy as np
    from safetensors.numpy import save_file

    config = json.loads((base / "config.json").read_text())
    width = config["n_embd"]
    tensors = {}
    for layer in range(config["n_layer"]):
        for module, (inputs, outputs) in _LORA_SHAPES.items():
            prefix = f"base_model.model.transformer.h.{layer}.{module}"
            tensors[f"{prefix}.lora_A.weight"] = np.full((rank, inputs * width), 0.01, dtype=np.float32)
            tensors[f"{prefix}.lora_B.weight"] = np.full((outputs * width, rank), np.nan if poison else 0.0, dtype=np.float32)
    save_file(tensors, str(out / "adapter_model.safetensors"))
    adapter_config: dict[str, Any] = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": rank,
        "lora_alpha": rank,
        "lora_dropout": 0.0,
        "target_modules": ["c_attn", "c_proj", "c_fc"],
        "fan_in_fan_out": True,
        "bias": "none",
        "inference_mode": True,
        "base_model_name_or_path": str(base),
    }
    (out / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n")


class _FakeStrategies:
    @hookimpl
    def register_training_strategies(self, register: Callable[[TrainingStrategy], None]) -> None:
        register(FakeStrategy("adapter"))
        register(FakeStrategy("checkpoint"))


@pytest.fixture
def fake_strategies(register_plugin: Callable[[object, str], None]) -> None:
    """Registers the strategies ``fake-adapter`` and ``fake-checkpoint`` for this test."""
    register_plugin(_FakeStrategies(), "ftreg-testing-fake-strategies")
