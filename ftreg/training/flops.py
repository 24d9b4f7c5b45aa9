"""Model FLOPs utilisation: how much of the accelerator's peak the training actually used."""

from __future__ import annotations

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
