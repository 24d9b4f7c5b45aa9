"""The machine a run measured: CPU, cores, memory, library versions, and a CUDA device if any."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe() -> dict[str, Any]:
    import torch
    import transformers

    import ftreg

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    record = {
        "cpu": cpu_model(),
        "cores": cores,
        "memory_gib": round(memory_gib, 1),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "ftreg": ftreg.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return record


def slug(machine: dict[str, Any]) -> str:
    """A file-name-safe name for the machine: its CPU (or GPU) and core count."""
    name = machine["cuda"] or machine["cpu"]
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + f"-{machine['cores']}c"
