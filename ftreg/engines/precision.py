"""Which precision a run computes in: what was asked, what the strategy honours, what the machine does fast."""

from __future__ import annotations

from ftreg.errors import ConfigError


def native_half_precisions() -> tuple[str, ...]:
    """The half precisions this machine computes natively, fastest first (none: fp32 is the fast path)."""
    import torch

    if torch.cuda.is_available():
        return ("fp16", "bf16") if torch.cuda.is_bf16_supported() else ("fp16",)
    # oneDNN runs bf16 matmuls on AVX512-BF16 or AMX at several times the fp32 rate; elsewhere bf16 is emulated and slower.
    if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
        return ("bf16",)
    return ()


def check_precision(requested: str, strategy: str, supported: tuple[str, ...]) -> None:
    """Refuse a precision the strategy does not honour (before anything loads)."""
    if requested != "auto" and requested not in supported:
        raise ConfigError(f"precision {requested!r}: strategy {strategy!r} trains in {', '.join(supported)} only")


def choose_precision(requested: str, strategy: str, supported: tuple[str, ...]) -> str:
    """``requested`` itself, checked; for auto, the fastest native precision the strategy supports."""
    check_precision(requested, strategy, supported)
    if requested == "auto":
        return next((precision for precision in native_half_precisions() if precision in supported), "fp32")
    if requested == "fp16":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("precision 'fp16' needs a CUDA device; on this machine use bf16 or fp32")
    return requested
