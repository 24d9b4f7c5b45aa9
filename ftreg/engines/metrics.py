"""What both engines report: metrics (with MFU on a known accelerator), the per-step loss log, the loss curve."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TRAIN_LOG = "train_log.json"  # per-step losses: {"train": [[step, loss], ...], "eval": [[step, loss], ...]}
LOSS_CURVE = "loss.png"

# Dense FP16/BF16 tensor-core peaks in FLOP/s, by a substring of torch.cuda.get_device_name().
# Only accelerators whose peak is published; CPUs have no single meaningful number, so no MFU there.
PEAK_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "L4": 121e12,
    "V100": 125e12,
    "T4": 65e12,
}


def device_peak_flops() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_FLOPS.items() if key in name), None)


def model_flops_utilisation(parameters: int, tokens_per_s: float) -> float | None:
    """The usual 6 * parameters FLOPs per trained token (forward + backward), over the device's peak."""
    peak = device_peak_flops()
    return None if peak is None else 6 * parameters * tokens_per_s / peak


def finish_metrics(metrics: dict[str, Any], parameters: int) -> dict[str, float]:
    """Add the eval split's perplexity, MFU where the device's peak is known, and round every value for the record."""
    utilisation = model_flops_utilisation(parameters, metrics["train_tokens_per_s"])
    if utilisation is not None:
        metrics = {**metrics, "mfu": utilisation}
    if "eval_loss" in metrics:  # a mean over loss-carrying tokens, as `ftreg eval` computes its perplexity
        metrics = {**metrics, "eval_perplexity": math.exp(min(metrics["eval_loss"], 700))}
    return {key: round(float(value), 6) for key, value in metrics.items()}


def write_loss_log(directory: Path, train: list[tuple[int, float]], evaluations: list[tuple[int, float]]) -> None:
    """train_log.json and, when there is a loss to draw, loss.png, into the version's files."""
    (directory / TRAIN_LOG).write_text(json.dumps({"train": train, "eval": evaluations}) + "\n")
    if train or evaluations:
        plot_losses(train, evaluations, directory / LOSS_CURVE)


def plot_losses(train: list[tuple[int, float]], evaluations: list[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        # A short run has only a handful of points: markers keep a one-point curve visible.
        axes.plot(*zip(*train), ".-" if len(train) < 20 else "-", label="train loss", linewidth=1)
    if evaluations:
        axes.plot(*zip(*evaluations), "o-", label="eval loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
