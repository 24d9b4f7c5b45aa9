import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftreg.registry import Registry
from hub_server import hub  # noqa: F401 - the fixture: a fake Hugging Face Hub on 127.0.0.1

# ftreg.testing's fixtures (registry, embedded_base, register_plugin, fake_strategies) are the
# ones plugin authors use too.
pytest_plugins = ["ftreg.testing"]

# Tests never reach the Hub: a base that is not local must fail fast, not hang on the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pytest runs one worker per core (-n 2): one thread each avoids oversubscribing the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Plugins installed in the environment stay out of the tests unless a test asks for them.
os.environ["FTREG_LOAD_PLUGINS"] = ""

HEAVY_MODULES = ("torch", "transformers", "peft", "datasets", "bitsandbytes")


@pytest.fixture(autouse=True)
def isolated_home(ftreg_home) -> Path:
    """Every test gets its own empty registry as $FTREG_HOME."""
    return ftreg_home


def safetensors_bytes(text: str) -> bytes:
    """A small, valid safetensors file whose one tensor holds ``text``'s bytes (publish checks the format)."""
    import numpy as np
    from safetensors.numpy import save

    return save({"w": np.frombuffer(text.encode(), dtype=np.uint8).copy()})


def publish_files(registry: Registry, name: str, files: dict[str, bytes] | None = None, **fields):
    """Publish a version whose artifact is the given files (default: one small weights file)."""
    fields.setdefault("kind", "adapter")
    with registry.staging() as stage:
        for rel, data in (files or {"adapter_model.safetensors": safetensors_bytes(f"weights of {name}")}).items():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_bytes(data)
        return registry.publish(stage, name=name, **fields)


def republish(registry: Registry, source: str, name: str, replaced: dict[str, bytes] | None = None):
    """Publish ``source``'s files (with ``replaced`` ones swapped in) and its record as a new version ``name``."""
    entry = registry.resolve(source)
    files = {rel: (entry.path / rel).read_bytes() for rel in entry.manifest["files"]} | (replaced or {})
    keep = ("base", "strategy", "config", "prompt_template", "base_fingerprint", "base_source", "dataset")
    return publish_files(registry, name, files, **{key: entry.manifest[key] for key in keep if key in entry.manifest})


@pytest.fixture
def cli_run(ftreg_home):
    """Run the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    from ftreg.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args])

    return run


def run_ftreg(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run ``python -m ftreg`` in a fresh process, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "ftreg", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=600,
    )




def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# Four steps at a high learning rate leave an adapter that clearly changes the logits.
SUPPORT_TRAIN = ["--strategy", "lora8bit", "--max-steps", "4", "--batch-size", "2", "--grad-accum", "1", "--eval-split", "0", "--learning-rate", "1e-2"]


@pytest.fixture(scope="session")
def _trained_registry(tmp_path_factory):
    """One registry holding tiny-gpt2-v1 and a real lora8bit adapter support-v1, trained once per test process."""
    from ftreg.cli import cli
    from test_train_generate import PAIRS

    home = tmp_path_factory.mktemp("trained") / "registry"
    data = write_json(home.parent / "support.json", PAIRS)
    result = CliRunner().invoke(cli, ["--registry", str(home), "train", "--dataset", str(data), "--name", "support", *SUPPORT_TRAIN])
    assert result.exit_code == 0, result.output
    return home, data


@pytest.fixture
def support_adapter(_trained_registry, ftreg_home):
    """This test's registry, a copy of one with tiny-gpt2-v1 and a trained adapter support-v1; returns the dataset it was trained on.

    Request it before anything else touches the registry: it replaces the registry directory.
    """
    import shutil

    home, data = _trained_registry
    assert not ftreg_home.exists(), "request support_adapter before fixtures that open the registry"
    shutil.copytree(home, ftreg_home)
    return data
