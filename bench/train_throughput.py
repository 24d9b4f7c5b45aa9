"""Training throughput: useful (non-padding) tokens per second of `ftreg train` vs a tutorial baseline.

Both train the same 8-bit LoRA on the embedded base over the bundled support data (all of it, one
epoch, max length 256), one after the other in this invocation. Target (issue 4): ratio >= 2.
Run: .venv/bin/python bench/train_throughput.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ftreg.datasets.loading import dataset_path

TARGET = 2.0
MAX_LENGTH = "256"
HERE = Path(__file__).parent


def run(command: list[str], env: dict) -> str:
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


def main() -> None:
    ftreg = str(Path(sys.executable).with_name("ftreg"))
    data = str(dataset_path("builtin:support"))
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FTREG_HOME": home}
        run([ftreg, "base", "init"], env)
        run([ftreg, "train", "--strategy", "lora8bit", "--dataset", data, "--name", "bench", "--eval-split", "0", "--max-length", MAX_LENGTH], env)
        entry = json.loads(run([ftreg, "show", "bench", "--json"], env))
        base = json.loads(run([ftreg, "show", "tiny-gpt2", "--json"], env))["path"]
        baseline = json.loads(run([sys.executable, str(HERE / "tutorial_baseline.py"), "--base", base, "--data", data, "--max-length", MAX_LENGTH], env).splitlines()[-1])

    ours = entry["metrics"]["train_tokens_per_s"]
    ratio = ours / baseline["useful_tokens_per_s"]
    print(f"data: builtin:support, {entry['dataset']['examples']} examples, 1 epoch, lora8bit on tiny-gpt2, max length {MAX_LENGTH}")
    print(f"{'':<34}{'train s':>9}{'useful tok/s':>14}")
    print(f"{'tutorial (pad to max_length)':<34}{baseline['runtime_s']:>9.1f}{baseline['useful_tokens_per_s']:>14.0f}"
          f"   ({baseline['useful_tokens'] / baseline['computed_tokens']:.0%} of computed tokens are useful)")
    print(f"{'ftreg train (packed)':<34}{entry['metrics']['train_runtime_s']:>9.1f}{ours:>14.0f}")
    print(f"ratio: {ratio:.2f}x  target >= {TARGET}x: {'ok' if ratio >= TARGET else 'MISSED'}")
    sys.exit(0 if ratio >= TARGET else 1)


if __name__ == "__main__":
    main()
