"""Peak memory and speed of `lora8bit` vs `full-fp16` training on a GPT-2-124M-sized model.

Both run `ftreg train` as a child process on the same base (random weights from `GPT2Config()`,
the embedded tokenizer), the same data and the same number of steps; peak resident memory is
the child's own (wait4 rusage). Target (issue 5): lora8bit peak <= 50% of full-fp16's.
Run: .venv/bin/python bench/strategy_memory.py [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET = 0.5


def make_base(directory: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    from ftreg.bases.embedded import SHIPPED

    GPT2LMHeadModel(GPT2Config()).save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(str(SHIPPED / name), directory / name)


def train(strategy: str, base: Path, steps: int, env: dict) -> tuple[float, dict]:
    """Peak RSS in MiB and the published metrics."""
    ftreg = str(Path(sys.executable).with_name("ftreg"))
    command = [ftreg, "train", "--strategy", strategy, "--base", str(base), "--dataset", "builtin:support", "--name", strategy,
               "--max-steps", str(steps), "--batch-size", "2", "--grad-accum", "1", "--eval-split", "0", "--logging-steps", "1000"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{strategy} failed:\n{child.stderr.read()[-2000:]}")
    metrics = json.loads(subprocess.run([ftreg, "show", strategy, "--json"], env=env, capture_output=True, text=True, check=True).stdout)["metrics"]
    return usage.ru_maxrss / 1024, metrics  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "gpt2-124m-random"
        make_base(base)
        env = {**os.environ, "FTREG_HOME": str(Path(scratch) / "home")}
        results = {strategy: train(strategy, base, args.steps, env) for strategy in ("full-fp16", "lora8bit")}
    print(f"GPT2Config() (124M parameters, random weights), builtin:support, {args.steps} steps of batch 2")
    print(f"{'strategy':<12}{'peak RSS MiB':>14}{'tokens/s':>10}")
    for strategy, (peak, metrics) in results.items():
        print(f"{strategy:<12}{peak:>14.0f}{metrics['train_tokens_per_s']:>10.0f}")
    ratio = results["lora8bit"][0] / results["full-fp16"][0]
    print(f"lora8bit peak / full-fp16 peak: {ratio:.0%}  target <= {TARGET:.0%}: {'ok' if ratio <= TARGET else 'MISSED'}")
    sys.exit(0 if ratio <= TARGET else 1)


if __name__ == "__main__":
    main()
