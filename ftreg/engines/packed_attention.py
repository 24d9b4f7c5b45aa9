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
dropped, so they get no gradient. Where one long example would make that batch bigger than the
row's T x T (one 256-token example among short ones), it computes the row under its block-diagonal
mask, as `sdpa` did. Either way the result equals the masked computation (tests/test_packing.py);
with attention dropout, equal in distribution: on a CPU the masks are drawn as `BitsDropout` draws
them, cheaper than sdpa's. With no mask to build, transformers skips making one. On CPU the
attention runs in fp32 (see below): a LoRA step of the embedded base then takes 9 to 26% less
time than under sdpa's bf16 mask, alternated in one process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

NAME = "ftreg_packed"
# GPT-2 hands the attention function its position_ids from transformers 5.2 and its scaling
# from 5.4; before, the function could not find the examples, and transformers would build no mask.
FIRST_TRANSFORMERS = "5.4"

_last_plan: tuple[Any, tuple[Any, ...]] | None = None  # every layer of a forward pass gets the same position_ids


def packed_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0, scaling: float | None = None, **kwargs: Any
) -> tuple[Any, None]:
    """transformers' attention-function signature: ``query``, ``key`` and ``value`` are
    [1, heads, T, head_dim] for one packed row; returns [1, T, heads, head_dim]."""
    import torch

    position_ids = kwargs.get("position_ids")
    assert attention_mask is None and position_ids is not None and query.shape[0] == 1, "packed_attention takes one packed row"
    plan = _plan(position_ids)
    dtype, on_cpu = query.dtype, query.device.type == "cpu"
    if on_cpu:
        # On CPU, sdpa's bf16 kernels are slower than its fp32 ones at these sizes (8 examples,
        # 650 tokens, 4 heads of 64, forward and backward: 16 ms in bf16, 8 in fp32), so the
        # attention is computed in fp32, out of autocast's reach, and handed back in ``dtype``.
        query, key, value = query.float(), key.float(), value.float()
    with torch.autocast("cpu", enabled=False) if on_cpu else contextlib.nullcontext():
        if plan[0] == "row":
            return _attention(query, key, value, plan[1], dropout, scaling).transpose(1, 2).to(dtype), None
        _, index, real_positions = plan
        examples, longest = index.shape
        _, heads, length, head_dim = query.shape

        def per_example(states: Any) -> Any:
            # index_select on the row's tokens: its backward adds whole rows back, where indexing
            # with a 2-D index accumulates element by element (14 ms instead of 8 in the example above).
            rows = states[0].transpose(0, 1).reshape(length, heads * head_dim).index_select(0, index.flatten())
            return rows.view(examples, longest, heads, head_dim).transpose(1, 2)  # [examples, heads, longest, head_dim]

        output = _attention(per_example(query), per_example(key), per_example(value), None, dropout, scaling)
    # [examples x longest, heads, head_dim], of which the real tokens, in the row's order
    output = output.transpose(1, 2).reshape(examples * longest, heads, head_dim).index_select(0, real_positions)
    return output.unsqueeze(0).to(dtype), None


def _attention(query: Any, key: Any, value: Any, allowed: Any, dropout: float, scaling: float | None) -> Any:
    """`scaled_dot_product_attention`, causal where ``allowed`` is None. On a CPU with dropout it is
    written out, so that the dropout mask comes from `kept_by_bits`: sdpa's CPU kernels take no
    dropout, and its fallback draws a float an element, which took longer than the attention
    (GPT-2-124M's 12 heads over 7 examples of 98 tokens: 19 ms forward and backward, 10.5 here)."""
    import torch
    import torch.nn.functional as F

    if dropout == 0 or query.device.type != "cpu":
        return F.scaled_dot_product_attention(query, key, value, attn_mask=allowed, dropout_p=dropout, is_causal=allowed is None, scale=scaling)
    from ftreg.engines.training_ops import kept_by_bits

    length = query.shape[-2]
    hidden = torch.ones(length, length, dtype=torch.bool, device=query.device).triu(1) if allowed is None else ~allowed
    scores = torch.matmul(query * (query.shape[-1] ** -0.5 if scaling is None else scaling), key.transpose(-1, -2))
    weights = torch.softmax(scores.masked_fill_(hidden, float("-inf")), dim=-1)
    # what is kept is scaled by 1 / (1 - p), as sdpa's dropout scales it: here once, on the output
    return torch.matmul(torch.where(kept_by_bits(weights.shape, dropout), weights, 0.0), value).mul_(1 / (1 - dropout))


def _plan(position_ids: Any) -> tuple[Any, ...]:
    """How to compute a row's attention, worked out once per forward pass: on a GPU each of
    these steps waits for the device."""
    global _last_plan
    if _last_plan is not None and _last_plan[0] is position_ids:
        return _last_plan[1]
    import torch

    length = position_ids.shape[1]
    begins = position_ids[0] == 0
    starts = begins.nonzero().flatten()
    lengths = torch.diff(starts, append=starts.new_tensor([length]))
    longest = int(lengths.max())
    plan: tuple[Any, ...]
    if len(starts) * longest * longest > length * length:
        example = begins.cumsum(0)
        causal = torch.ones(length, length, dtype=torch.bool, device=position_ids.device).tril()
        plan = ("row", causal & (example[:, None] == example[None, :]))
    else:
        offsets = torch.arange(longest, device=position_ids.device)
        # Rows of the examples' token indices; past an example's end they repeat the row's last
        # index, which only the dropped padded queries can see.
        real = offsets < lengths[:, None]
        plan = ("examples", (starts[:, None] + offsets).clamp(max=length - 1), real.flatten().nonzero().flatten())
    _last_plan = (position_ids, plan)
    return plan


@contextlib.contextmanager
def packed_attention_used(model: Any) -> Iterator[None]:
    """Compute ``model``'s attention with `packed_attention` for the while, if it is a GPT-2 that
    uses `sdpa` under transformers >= 5.4. Other attention (flash-attention's own packed kernels on
    a GPU, eager, other architectures with grouped or windowed attention) is left as it is."""
    global _last_plan
    import transformers
    from packaging.version import Version

    config = model.config
    if config.model_type != "gpt2" or config._attn_implementation != "sdpa" or Version(transformers.__version__) < Version(FIRST_TRANSFORMERS):
        yield
        return
    transformers.AttentionInterface.register(NAME, packed_attention)
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = "sdpa"
        _last_plan = None  # let the last batch go
