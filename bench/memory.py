"""Peak memory of training: lora8bit vs full-fp16 vs scratch on the GPT-2-124M-sized model."""

from __future__ import annotations

from bench.suite import Context, Section, Table, Target, peak_of

TITLE = "Peak memory of training"
TARGET = 0.5  # issue 5: lora8bit's peak at most half of full-fp16's
STRATEGIES = ("full-fp16", "lora8bit", "scratch")


def run(context: Context) -> Section:
    base = context.embedded_base() if context.quick else context.big_base()
    steps = 1 if context.quick else 4
    home = context.home("memory")
    peaks = {}
    for strategy in STRATEGIES[:2] if context.quick else STRATEGIES:
        command = context.train_command(strategy, strategy, steps, "--base", str(base), "--grad-accum", "1", "--logging-steps", "1000")
        peaks[strategy] = peak_of(command, context.env(home))
    full = peaks["full-fp16"][1]
    ratio = peaks["lora8bit"][1] / full
    model = "the embedded base" if context.quick else "the GPT-2-124M-sized model (random weights)"
    return Section(
        key="memory", title=TITLE,
        about=(f"`ftreg train` of each strategy on {model}, `builtin:support`, {steps} steps of batch 2, each in its own process; "
               "the peak is that process's maximum resident set size (one run each: peak memory does not vary between runs as time does). "
               "No CUDA device: full-fp16 trains in fp32 here, and scratch is a full fine-tune in ftreg's own loop."),
        tables=[Table(["strategy", "peak RSS MiB", "vs full-fp16", "wall s (with start-up)"],
                      [[strategy, f"{peak:.0f}", f"{peak / full:.0%}", f"{seconds:.1f}"] for strategy, (seconds, peak) in peaks.items()])],
        targets=[Target(claim=f"lora8bit peak memory at most 50% of full-fp16's ({model})", issue=5, measured=f"{peaks['lora8bit'][1]:.0f} MiB",
                        baseline=f"full-fp16: {full:.0f} MiB", ratio=f"{ratio:.0%}", met=ratio <= TARGET)],
    )
