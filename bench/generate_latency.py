"""How long `ftreg generate` takes from the shell, next to the floor of importing torch and transformers.

Target (issue 12): `ftreg generate --adapter support-v1 ...` on the embedded base answers in
under 3 s (median wall time, start to exit). A throwaway registry gets the embedded base and a
two-step support adapter first.
Run: .venv/bin/python bench/generate_latency.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import verdict, wall  # bench/ is on sys.path when a bench runs as a script

TARGET_S = 3.0
QUESTION = "What's the deadline for sending items back?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ftreg = str(Path(sys.executable).with_name("ftreg"))
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FTREG_HOME": home}
        subprocess.run(
            [ftreg, "train", "--quiet", "--strategy", "lora8bit", "--dataset", "builtin:support", "--name", "support", "--max-steps", "2", "--eval-split", "0"],
            env=env, stdout=subprocess.DEVNULL, check=True,
        )
        floor = wall([sys.executable, "-c", "import torch, transformers"], env, args.repeat)
        print(f"median of {args.repeat} runs; generate answers one question greedily, at most 48 new tokens")
        print(f"{'command':<44}{'wall s':>8}{'vs floor':>10}  target")
        floor_label = 'python -c "import torch, transformers"'
        print(f"{floor_label:<44}{floor:>8.2f}{1.0:>9.1f}x")
        ok = True
        generate = ["generate", "--greedy", "--max-new-tokens", "48"]
        for label, model in (("--base tiny-gpt2", ["--base", "tiny-gpt2"]), ("--adapter support-v1", ["--adapter", "support-v1"])):
            seconds = wall([ftreg, *generate, *model, QUESTION], env, args.repeat)
            targeted = "adapter" in label
            ok &= seconds < TARGET_S or not targeted
            print(f"{'ftreg generate ' + label:<44}{seconds:>8.2f}{seconds / floor:>9.1f}x  {verdict(seconds, TARGET_S) if targeted else ''}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
