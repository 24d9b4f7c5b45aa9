"""Attention for packed rows, computed example by example instead of under a row-wide mask.

A packed row of T tokens holds several examples whose position ids restart at 0. transformers'
`sdpa` attention computes it as one T x T attention under a block-diagonal mask: every head of
every layer builds, softmaxes and (with GPT-2's attention dropout) draws random numbers for T x T
scores, although each example attends only to itself. With 8 examples of about 80 tokens that
is 8 times the work the examples need; on GPT-2-124M it was a quarter of a LoRA training step on
CPU, drawing the dropout masks alone a sixth.

`packed_attention` gathers each example's queries, keys and values into a batch of examples
padded to the longest, and runs the same `scaled_dot_product_attention` with `is_causal=True`:
a causal query never reaches the padding after its example, and the padded queries' outputs are
dropped, so they get no gradient. The result equals the masked computation (tests/test_packing.py).
With no mask to build, transformers skips making one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

NAME = "ftreg_packed"


def packed_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0, scaling: float | None = None, **kwargs: Any
) -> tuple[Any, None]:
    """transformers' attention-function signature: ``query``, ``key`` and ``value`` are
    [1, heads, T, head_dim] for one packed row; returns [1, T, heads, head_dim]."""
    import torch
    import torch.nn.functional as F

    position_ids = kwargs.get("position_ids")
    assert attention_mask is None and position_ids is not None and query.shape[0] == 1, "packed_attention takes one packed row"
    length = query.shape[2]
    starts = (position_ids[0] == 0).nonzero().flatten()
    lengths = torch.diff(starts, append=starts.new_tensor([length]))
    offsets = torch.arange(int(lengths.max()), device=query.device)
    # Rows of the examples' token indices; past an example's end they repeat the row's last index,
    # which only the dropped padded queries can see.
    index = (starts[:, None] + offsets).clamp(max=length - 1)
    real = offsets < lengths[:, None]

    def per_example(states: Any) -> Any:
        return states[0][:, index].transpose(0, 1)  # [examples, heads, longest, head_dim]

    output = F.scaled_dot_product_attention(per_example(query), per_example(key), per_example(value), dropout_p=dropout, is_causal=True, scale=scaling)
    return output.transpose(1, 2)[real].unsqueeze(0), None  # back in the row's token order


@contextmanager
def packed_attention_used(model: Any) -> Iterator[None]:
    """Compute ``model``'s attention with `packed_attention` for the while, if it is a GPT-2 that
    uses `sdpa`. Other attention (flash-attention's own packed kernels on a GPU, eager, other
    architectures with grouped or windowed attention) is left as it is."""
    config = model.config
    if config.model_type != "gpt2" or config._attn_implementation != "sdpa":
        yield
        return
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_attention)
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = "sdpa"
