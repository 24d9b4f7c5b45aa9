"""How fast the CLI answers on a registry of 1,000 versions, next to a bare Python start.

Target (issue 2): `ftreg --help` and `ftreg list` under 0.5 s wall each on the 2-core machine.
Run: .venv/bin/python bench/cli_startup.py [--versions 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from timing import verdict, wall  # bench/ is on sys.path when a bench runs as a script

from ftreg.registry import Registry

TARGET_S = 0.5


def fill(registry: Registry, versions: int) -> None:
    import numpy as np
    from safetensors.numpy import save

    for i in range(versions):
        with registry.staging() as stage:
            # A small valid safetensors file (publish parses it), different for every version.
            (stage / "adapter_model.safetensors").write_bytes(save({"w": np.frombuffer(os.urandom(256), dtype=np.uint8).copy()}))
            registry.publish(
                stage, name=f"model-{i % 10}", kind="adapter", base="tiny-gpt2-v1", strategy="lora8bit",
                metrics={"eval_loss": 1.0 + i / versions, "train_loss": 2.0}, config={"learning_rate": 2e-4, "epochs": 1},
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ftreg = str(Path(sys.executable).with_name("ftreg"))
    with tempfile.TemporaryDirectory() as home:
        registry = Registry(home)
        fill(registry, args.versions)
        registry.close()
        env = {**os.environ, "FTREG_HOME": home}
        baseline = wall([sys.executable, "-c", "pass"], env, args.repeat)
        print(f"registry: {args.versions} versions; median of {args.repeat} runs")
        print(f"{'command':<28}{'wall s':>8}{'vs python -c pass':>20}  target")
        print(f"{'python -c pass':<28}{baseline:>8.3f}{1.0:>19.1f}x")
        ok = True
        for command in (["--help"], ["list"], ["list", "--json"], ["show", "model-3"], ["plugins"]):
            seconds = wall([ftreg, *command], env, args.repeat)
            targeted = command in (["--help"], ["list"])
            ok &= seconds < TARGET_S or not targeted
            print(f"{'ftreg ' + ' '.join(command):<28}{seconds:>8.3f}{seconds / baseline:>19.1f}x  {verdict(seconds, TARGET_S) if targeted else ''}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
