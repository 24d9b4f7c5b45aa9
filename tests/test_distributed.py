"""The Trainer-based strategies run unchanged under torchrun; only rank 0 publishes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_two_process_data_parallel_training_publishes_one_version(embedded_base, registry, tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"instruction": f"question {i}", "response": f"answer {i}"} for i in range(6)]))
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "-m", "ftreg", "train", "--strategy", "full-fp16", "--dataset", str(data),
         "--name", "ddp", "--epochs", "1", "--batch-size", "1", "--grad-accum", "1", "--eval-split", "0"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["ddp-v1"]  # printed once, by the rank that published
    assert [e.ref for e in registry.entries("ddp")] == ["ddp-v1"]
    # Six examples, one per process per step, two processes: three steps, not six.
    assert registry.resolve("ddp").metrics["train_steps"] == 3
