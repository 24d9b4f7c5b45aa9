"""Cheaper forms of four of GPT-2's training operations, computing the same (dropout: the same
in distribution).

All four are work around the matmuls, which on a CPU costs memory bandwidth or one thread's time
rather than arithmetic: GPT-2's GELU, written in transformers as six tensor operations; the token
loss, which transformers computes on a full fp32 copy of the logits; dropout, whose masks PyTorch
draws one float at a time; and the tied token embedding's gradient, which PyTorch writes into a
vocabulary-sized matrix of zeros. `packed_training` uses all four.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch

from ftreg.contract import IGNORE_INDEX

# Rows of logits a CPU works on at once: about 1 MiB in fp32, so a chunk stays in cache through
# the several passes (upcast, max, exp, sum) that would each read and write all logits from memory.
CHUNK_BYTES = 1 << 20


@contextlib.contextmanager
def fused_gelu_used(model: torch.nn.Module) -> Iterator[None]:
    """GPT-2's ``gelu_new`` computed by one kernel for the while.

    transformers writes ``gelu_new`` in Python (a power, three products, two sums and a tanh), so
    forward and backward make about a dozen passes over the MLP's widest activations; PyTorch's
    ``gelu(approximate="tanh")`` is the same function in one pass each way (equal up to rounding).
    On the embedded base's LoRA step that is about 5% of the time.
    """
    from transformers.activations import NewGELUActivation

    with _modules_replaced(model, NewGELUActivation, lambda _: torch.nn.GELU(approximate="tanh")):
        yield


@contextlib.contextmanager
def cheaper_dropout_used(model: torch.nn.Module) -> Iterator[None]:
    """Every `torch.nn.Dropout` of ``model`` (GPT-2's own, LoRA's) draws its masks as `BitsDropout`
    for the while."""
    with _modules_replaced(model, torch.nn.Dropout, lambda dropout: BitsDropout(dropout.p, dropout.inplace)):
        yield


@contextlib.contextmanager
def tied_embedding_rows_added(model: torch.nn.Module) -> Iterator[None]:
    """The token embedding's gradient added row by row into the weight's gradient, for the while,
    when the embedding is the output layer's weight too (GPT-2's is).

    PyTorch's dense embedding backward writes a vocabulary-by-width matrix of zeros and fills in
    the looked-up rows; its sparse one gives the rows alone, but autograd adds them to the output
    layer's gradient out of place (that gradient is a view, which autograd does not write into),
    copying the whole matrix. Either way it is passes over 154 MB a micro-batch on a GPT-2-124M.
    Here, once a step has a gradient, the lookup's backward adds its rows into it in place, before
    the output layer's gradient is added; a step's first micro-batch gives them as a sparse
    gradient. The gradient is the same dense tensor (up to the order of additions). Backward must
    accumulate into ``.grad``, as `backward()` does (`torch.autograd.grad` would find the rows there).
    Data-parallel training keeps PyTorch's lookup: DistributedDataParallel reduces each gradient
    once autograd has accumulated it, and rows added before would be reduced twice.
    """
    embedding, output = model.get_input_embeddings(), model.get_output_embeddings()  # type: ignore[operator]
    tied = (
        type(embedding) is torch.nn.Embedding
        and output is not None
        and output.weight is embedding.weight
        and embedding.weight.requires_grad
        and embedding.padding_idx is None
        and embedding.max_norm is None
        and not embedding.sparse
        and not (torch.distributed.is_available() and torch.distributed.is_initialized())
    )
    if not tied:
        yield
        return
    embedding.forward = lambda ids: _RowsLookup.apply(ids, embedding.weight)
    try:
        yield
    finally:
        del embedding.forward


class _RowsLookup(torch.autograd.Function):
    """An embedding lookup whose backward adds its rows into the weight's gradient where there is one."""

    @staticmethod
    def forward(ctx: Any, ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.weight = weight  # the parameter itself, whose .grad backward reads
        return torch.nn.functional.embedding(ids, weight)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor | None]:
        (ids,) = ctx.saved_tensors
        ids, rows = ids.reshape(-1), grad.reshape(-1, grad.shape[-1])
        accumulated = ctx.weight.grad
        if accumulated is None:
            # the ids are the lookup's own, in range: checking them would cost a pass, and unasked, torch warns each time
            return None, torch.sparse_coo_tensor(ids.unsqueeze(0), rows, ctx.weight.shape, check_invariants=False)
        accumulated.index_add_(0, ids, rows.to(accumulated.dtype))
        return None, None


class BitsDropout(torch.nn.Dropout):
    """`torch.nn.Dropout` with cheaper masks on a CPU.

    PyTorch's CPU dropout draws one float per element from its generator, on one thread: with LoRA's
    default dropout, the draws were 22% of a LoRA step of the embedded base. Here every 64-bit draw
    from the same generator gives four elements 16 random bits each, kept where the bits clear a
    threshold: the probability p to within 2**-17 (0.0500030 for 0.05) and the same scaling of
    what is kept. The draws, still the most costly part, are a quarter of PyTorch's (with two
    elements a draw they were 12% of that LoRA step on a 2-core Xeon; with four, 6%). Seeded runs
    and resumed ones repeat exactly; the masks differ from `torch.nn.Dropout`'s. Elsewhere than
    on a CPU, and in eval mode, it is `torch.nn.Dropout`.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0 < self.p < 1 or input.device.type != "cpu":
            return super().forward(input)
        scaled_mask = kept_by_bits(input.shape, self.p).to(input.dtype).div_(1 - self.p)  # as torch's dropout scales its mask
        return input.mul_(scaled_mask) if self.inplace else input * scaled_mask


def kept_by_bits(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """A dropout mask of ``shape`` (True: kept), from 16 random bits an element, four elements to
    each 64-bit draw from torch's generator: dropped with probability ``p`` to within 2**-17."""
    count = math.prod(shape)
    draws = torch.randint(-(2**63), 2**63 - 1, (-(-count // 4),), dtype=torch.int64)
    bits = draws.view(torch.int16)[:count].view(shape)
    # uniform over [-2**15, 2**15): below the threshold with probability p (rounded to a multiple of 2**-16)
    threshold = min(round(p * 2**16) - 2**15, 2**15 - 1)
    return bits >= threshold


@contextlib.contextmanager
def _modules_replaced(model: torch.nn.Module, kind: type, replacement: Any) -> Iterator[None]:
    """Each submodule of exactly ``kind`` replaced by ``replacement(module)``, then put back, so that
    the model computes afterwards exactly what its config names. Each stand-in takes its module's
    train or eval mode, and hands back the mode it ends in (an evaluation inside draws no dropout)."""
    replaced = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children() if type(child) is kind]
    for parent, name, child in replaced:
        setattr(parent, name, replacement(child).train(child.training))
    try:
        yield
    finally:
        for parent, name, child in replaced:
            child.train(getattr(parent, name).training)
            setattr(parent, name, child)


def causal_lm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    vocab_size: int,
    num_items_in_batch: torch.Tensor | int | None = None,
    ignore_index: int = IGNORE_INDEX,
    shift_labels: torch.Tensor | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """transformers' ``ForCausalLMLoss``, on CPU in cache-sized chunks of rows.

    transformers upcasts all logits to fp32 and runs log-softmax over them, and backward makes as
    many passes again; on the embedded base's LoRA step those passes were 12% of the time, and on
    GPT-2's 50,257-word vocabulary the loss took longer than the projection that made the logits.
    Here each chunk of rows is upcast, reduced to its log-sum-exp, and in backward turned into the
    gradient, while it is in cache. Same loss and gradient, in fp32, rounded once to the logits'
    dtype. On a GPU transformers' own loss runs: there, chunks would be many small kernels.
    """
    from transformers.loss.loss_utils import ForCausalLMLoss

    if logits.device.type != "cpu":
        return ForCausalLMLoss(logits, labels, vocab_size, num_items_in_batch, ignore_index, shift_labels, **kwargs)  # type: ignore[arg-type]  # it takes an int too
    if shift_labels is None:
        shift_labels = torch.nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    targets = shift_labels.reshape(-1)
    counted = targets != ignore_index
    if bool((targets[counted] < 0).any()):
        raise IndexError(f"a target below 0 that is not the ignore index {ignore_index}")  # as cross_entropy refuses it
    divisor = counted.sum() if num_items_in_batch is None else num_items_in_batch
    return _TokenCrossEntropy.apply(logits.reshape(-1, vocab_size), targets.clamp(min=0), counted, torch.as_tensor(divisor, dtype=torch.float32))


def _row_chunks(logits: torch.Tensor) -> Iterator[slice]:
    rows = max(1, CHUNK_BYTES // (4 * logits.shape[1]))
    for start in range(0, logits.shape[0], rows):
        yield slice(start, start + rows)


class _TokenCrossEntropy(torch.autograd.Function):
    """The summed cross-entropy of the ``counted`` rows over ``divisor``. Forward keeps each row's
    log-sum-exp; backward recomputes the softmax from it, chunk by chunk."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor, counted: torch.Tensor, divisor: torch.Tensor) -> torch.Tensor:
        log_sum_exp = torch.empty(logits.shape[0], dtype=torch.float32)
        for rows in _row_chunks(logits):
            log_sum_exp[rows] = torch.logsumexp(logits[rows].float(), dim=1)
        picked = logits.gather(1, targets.unsqueeze(1)).squeeze(1).float()
        ctx.save_for_backward(logits, targets, counted, divisor, log_sum_exp)
        return ((log_sum_exp - picked) * counted).sum() / divisor

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, upstream: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        logits, targets, counted, divisor, log_sum_exp = ctx.saved_tensors
        # in fp32: a loss scale is applied before rounding; rows that count for nothing get zero
        # even when nothing counts (a zero divisor), as transformers' loss gives them
        scale = torch.where(counted, upstream / divisor, 0.0).unsqueeze(1)
        minus_one = torch.full((logits.shape[0], 1), -1.0)
        grad = torch.empty_like(logits)
        for rows in _row_chunks(logits):
            # softmax minus the one-hot target: the gradient of a row's cross-entropy
            probabilities = logits[rows].to(torch.float32, copy=True).sub_(log_sum_exp[rows].unsqueeze(1)).exp_()
            probabilities.scatter_add_(1, targets[rows].unsqueeze(1), minus_one[rows])
            grad[rows] = probabilities.mul_(scale[rows])
        return grad, None, None, None
