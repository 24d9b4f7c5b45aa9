"""What every benchmark shares: repeated A/B measurements, targets, and the section a benchmark returns.

A benchmark is a module with ``TITLE`` and ``run(context) -> Section``. It measures ftreg and a
baseline in the same run, alternating them (A B A B ...) so that a slow minute of the machine
falls on both, and reports the median of the repetitions with their min and max.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Sample:
    """Repeated measurements of one thing, in one unit."""

    values: list[float]
    unit: str

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self, digits: int = 2) -> str:
        """``median (min-max)``, or only the value when measured once."""
        return self.shown(lambda value: f"{value:.{digits}f}")

    def shown(self, show: Callable[[float], str], to: str = "-") -> str:
        """`spread` with each value as ``show`` writes it: ``1.36x (1.21x-1.52x)``, ``+2.1% (-0.9% to +8.8%)``."""
        if len(self.values) == 1:
            return show(self.median)
        return f"{show(self.median)} ({show(min(self.values))}{to}{show(max(self.values))})"


def alternate(contenders: dict[str, Callable[[], float]], repeat: int, unit: str) -> dict[str, Sample]:
    """Run each contender once per round, ``repeat`` rounds, in the order given."""
    values: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(repeat):
        for label, measure in contenders.items():
            values[label].append(measure())
    return {label: Sample(measured, unit) for label, measured in values.items()}


@dataclass
class Target:
    """A performance claim of an earlier issue, its measured value and its baseline."""

    claim: str  # what is promised, in words: "ftreg list on 1,000 versions under 0.5 s"
    issue: int
    measured: str  # as shown: "0.31 s (0.30-0.33)"
    baseline: str  # what it is compared with, and its value: "python -c pass: 0.02 s"
    ratio: str  # "14.3x", or "" where a target is an absolute bound
    met: bool


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Plot:
    """A line plot: ``series`` maps a label to its (x, y) points."""

    name: str  # file stem of the PNG
    title: str
    x_label: str
    y_label: str
    series: dict[str, list[tuple[float, float]]]
    log_x: bool = False
    log_y: bool = False


@dataclass
class Section:
    key: str
    title: str
    about: str  # what is compared with what, and how (Markdown)
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    seconds: float = 0.0  # how long the benchmark took, set by the runner

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Section:
        return cls(
            key=data["key"], title=data["title"], about=data["about"], seconds=data["seconds"],
            tables=[Table(**table) for table in data["tables"]],
            targets=[Target(**target) for target in data["targets"]],
            plots=[Plot(**{**plot, "series": {label: [tuple(point) for point in points] for label, points in plot["series"].items()}}) for plot in data["plots"]],
        )


@dataclass
class Context:
    """What a benchmark runs with: the mode, a scratch folder, and the ftreg command."""

    quick: bool
    scratch: Path
    python: str = sys.executable
    ftreg: str = str(Path(sys.executable).with_name("ftreg"))
    _shared: dict[str, Any] = field(default_factory=dict)

    def home(self, name: str) -> Path:
        """A registry folder of its own (FTREG_HOME) for one benchmark."""
        path = self.scratch / "homes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def env(self, home: Path) -> dict[str, str]:
        return {**os.environ, "FTREG_HOME": str(home)}

    def shared(self, key: str, make: Callable[[], Any]) -> Any:
        """Something several benchmarks use (a trained adapter, a big base), made once."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def ftreg_json(self, home: Path, *args: str) -> Any:
        return json.loads(run_checked([self.ftreg, *args, "--json"], self.env(home)))

    def embedded_base(self) -> Path:
        """The embedded tiny GPT-2's folder (published once, in a home of its own)."""

        def publish() -> Path:
            home = self.home("base")
            run_checked([self.ftreg, "base", "init"], self.env(home))
            return Path(self.ftreg_json(home, "show", "tiny-gpt2")["path"])

        return self.shared("embedded-base", publish)

    def train_command(self, strategy: str, name: str, steps: int, *extra: str) -> list[str]:
        """`ftreg train`, quiet, of ``strategy`` on the bundled support data for ``steps`` steps of batch 2, publishing ``name``."""
        return [self.ftreg, "train", "--quiet", "--strategy", strategy, "--dataset", "builtin:support", "--name", name,
                "--max-steps", str(steps), "--batch-size", "2", "--eval-split", "0", *extra]

    def train_adapters(self, home: Path, names: tuple[str, ...], *extra: str) -> None:
        """One-step r=8 lora8bit adapters named ``names`` in ``home``."""
        for name in names:
            run_checked(self.train_command("lora8bit", name, 1, "-o", "r=8", *extra), self.env(home))

    def support_adapter(self) -> Path:
        """A registry home holding the embedded base and ``support-v1``, a two-step lora8bit adapter on the support data."""

        def train() -> Path:
            home = self.home("adapter")
            run_checked(self.train_command("lora8bit", "support", 2), self.env(home))
            return home

        return self.shared("support-adapter", train)

    def big_adapters(self) -> Path:
        """A registry home holding ``big-a-v1`` and ``big-b-v1``: one-step r=8 lora8bit adapters on the 124M-sized base."""

        def train() -> Path:
            home = self.home("big-adapters")
            self.train_adapters(home, ("big-a", "big-b"), "--base", str(self.big_base()))
            return home

        return self.shared("big-adapters", train)

    def big_base(self) -> Path:
        """A GPT-2-124M-sized model (GPT2Config's defaults but the embedded tokenizer's vocabulary) with random weights."""

        def make() -> Path:
            import torch
            from transformers import GPT2Config, GPT2LMHeadModel

            from ftreg.engines.quiet import no_loading_bars

            no_loading_bars()
            embedded = self.embedded_base()
            special = json.loads((embedded / "config.json").read_text())
            directory = self.scratch / "gpt2-124m-sized"
            config = GPT2Config(vocab_size=50257, bos_token_id=special["bos_token_id"], eos_token_id=special["eos_token_id"], pad_token_id=special["pad_token_id"])
            torch.manual_seed(0)  # the same random weights in every run: eval losses compare across runs
            GPT2LMHeadModel(config).save_pretrained(directory)
            for name in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copyfile(embedded / name, directory / name)
            return directory

        return self.shared("big-base", make)


def run_checked(command: list[str], env: dict[str, str]) -> str:
    """A command's stdout; its stderr's end in the error when it fails."""
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def wall_seconds(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one run of ``command``, start to exit."""
    start = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


# A process's peak resident size survives exec, so a child forked from this (large) process would
# report this process's size: a small launcher starts the command and reports its child's peak.
PEAK_LAUNCHER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code, file=open(sys.argv[1], "w"))
"""


def peak_of(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of ``command``'s process (Linux reports ru_maxrss in KiB)."""
    report = Path(env.get("TMPDIR", "/tmp")) / f"ftreg-bench-peak-{os.getpid()}"
    done = subprocess.run([sys.executable, "-c", PEAK_LAUNCHER, str(report), *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds, peak_kib, code = report.read_text().split()
    report.unlink()
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {code}:\n{done.stderr[-3000:]}")
    return float(seconds), int(peak_kib) / 1024


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
