"""CLI start: `--help`, `list` and `show` on 1,000 versions next to a bare Python start and an import of peft;
`generate` on the embedded base next to an import of torch and transformers."""

from __future__ import annotations

from bench.registry import publish_versions
from bench.suite import Context, Section, Table, Target, alternate, run_checked, wall_seconds

TITLE = "CLI start"
CLI_TARGET_S = 0.5  # issue 2
GENERATE_TARGET_S = 3.0  # issue 12
QUESTION = "What's the deadline for sending items back?"


def run(context: Context) -> Section:
    from ftreg.registry import Registry

    versions = 100 if context.quick else 1000
    repeat = 1 if context.quick else 5
    home = context.home("cli")
    env = context.env(home)
    registry = Registry(home)
    publish_versions(registry, versions)
    registry.close()

    def timed(*command: str):
        return lambda: wall_seconds(list(command), env)

    python = context.python
    peft_label = 'python -c "import peft"'
    light_commands = {
        "python -c pass": timed(python, "-c", "pass"),
        peft_label: timed(python, "-c", "import peft"),
        "ftreg --help": timed(context.ftreg, "--help"),
        "ftreg list": timed(context.ftreg, "list"),
        "ftreg show model-3": timed(context.ftreg, "show", "model-3"),
    }
    if context.quick:  # the smoke run skips what only costs seconds
        del light_commands[peft_label]
    light = alternate(light_commands, repeat, "s")

    adapter_home = context.support_adapter()
    adapter_env = context.env(adapter_home)
    generate = [context.ftreg, "generate", "--greedy", "--max-new-tokens", "48"]
    floor_label = 'python -c "import torch, transformers"'
    heavy_commands = {
        floor_label: lambda: wall_seconds([python, "-c", "import torch, transformers"], adapter_env),
        'python -c "import torch"': lambda: wall_seconds([python, "-c", "import torch"], adapter_env),
        "ftreg generate --base tiny-gpt2": lambda: wall_seconds([*generate, "--base", "tiny-gpt2", QUESTION], adapter_env),
        "ftreg generate --adapter support-v1": lambda: wall_seconds([*generate, "--adapter", "support-v1", QUESTION], adapter_env),
    }
    if context.quick:
        del heavy_commands["ftreg generate --base tiny-gpt2"]
    heavy = alternate(heavy_commands, repeat, "s")
    run_checked([context.ftreg, "list"], adapter_env)  # the adapter is still there after the runs

    bare, peft, floor = light["python -c pass"], light.get(peft_label), heavy[floor_label]
    light_rows = [[label, sample.spread(), f"{sample.median / bare.median:.1f}x", f"{sample.median / peft.median:.2f}x" if peft else ""] for label, sample in light.items()]
    heavy_rows = [[label, sample.spread(), f"{sample.median / floor.median:.2f}x"] for label, sample in heavy.items()]
    targets = [
        Target(claim=f"`ftreg {command}` on {versions:,} versions under {CLI_TARGET_S} s", issue=2, measured=f"{light[f'ftreg {command}'].spread()} s",
               baseline=f"python -c pass: {bare.spread()} s", ratio=f"{light[f'ftreg {command}'].median / bare.median:.1f}x",
               met=light[f"ftreg {command}"].median < CLI_TARGET_S)
        for command in ("--help", "list")
    ]
    adapter = heavy["ftreg generate --adapter support-v1"]
    targets.append(Target(claim=f"`ftreg generate --adapter` on the embedded base under {GENERATE_TARGET_S:g} s", issue=12, measured=f"{adapter.spread()} s",
                          baseline=f"import torch, transformers: {floor.spread()} s", ratio=f"{adapter.median / floor.median:.2f}x", met=adapter.median < GENERATE_TARGET_S))
    return Section(
        key="cli", title=TITLE,
        about=(
            f"Wall time from start to exit of each command, alternated over {repeat} rounds, "
            f"on a registry of {versions:,} versions. `generate` answers one question greedily (at most 48 new tokens) with the embedded base, bare and with "
            "a two-step support adapter. The issue's floor is importing torch and transformers, which a program running GPT-2 through transformers pays; "
            "`generate` runs GPT-2 and LoRA with torch alone (ftreg/inference/lean.py), so importing torch is its own floor."
        ),
        tables=[Table(["command", "wall s", "vs python -c pass", "vs import peft"], light_rows),
                Table(["command", "wall s", "vs import torch, transformers"], heavy_rows)],
        targets=targets,
    )
