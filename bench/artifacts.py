"""Artifact size and verification: an adapter's bytes vs a full checkpoint's, and `ftreg verify` time per GB vs sha256sum."""

from __future__ import annotations

from pathlib import Path

from bench.suite import Context, Section, Table, alternate, run_checked, wall_seconds

TITLE = "Artifact size and verification"


def size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def run(context: Context) -> Section:
    home = context.home("artifacts")
    env = context.env(home)
    base = context.embedded_base() if context.quick else context.big_base()
    model = "embedded base" if context.quick else "GPT-2-124M-sized model"
    for strategy in ("lora8bit", "full-fp16"):
        run_checked(context.train_command(strategy, strategy, 1, "--base", str(base), "--grad-accum", "1"), env)
    adapter, checkpoint = (Path(context.ftreg_json(home, "show", f"{name}-v1")["path"]) for name in ("lora8bit", "full-fp16"))
    adapter_bytes, checkpoint_bytes = size(adapter), size(checkpoint)
    files = sorted(str(file) for file in checkpoint.rglob("*") if file.is_file())
    timings = alternate({
        "ftreg verify": lambda: wall_seconds([context.ftreg, "verify", "full-fp16-v1"], env),
        "sha256sum of the same files": lambda: wall_seconds(["sha256sum", *files], env),
    }, 1 if context.quick else 5, "s")
    gigabytes = checkpoint_bytes / 1e9
    rows = [[name, sample.spread(3), f"{sample.median / gigabytes:.2f}"] for name, sample in timings.items()]
    return Section(
        key="artifacts", title=TITLE,
        about=(f"One training step of each strategy on the {model}, published; sizes are every file of the version (weights, tokenizer, record, card, loss plot). "
               "`ftreg verify` re-hashes every file of the full checkpoint against its record (wall time including process start), next to `sha256sum` of the "
               "same files, which is the floor of reading and hashing them."),
        tables=[
            Table(["version", "bytes", "vs full checkpoint"], [["lora8bit adapter (r=8)", f"{adapter_bytes:,}", f"{adapter_bytes / checkpoint_bytes:.2%}"],
                                                               ["full-fp16 checkpoint", f"{checkpoint_bytes:,}", "100%"]]),
            Table(["command", "wall s", "s per GB"], rows, caption=f"Verifying the {checkpoint_bytes / 1e6:.0f} MB checkpoint:"),
        ],
    )
