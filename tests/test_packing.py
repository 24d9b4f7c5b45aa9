"""Packed batches must compute exactly what separate examples compute."""

import contextlib
import itertools
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ftreg.datasets.encoding import IGNORE_INDEX
from ftreg.engines.batching import model_inputs, packed_training, packing_collator, split_packed, step_budget


def test_packed_logits_equal_per_example_logits(embedded_base):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(embedded_base.path).eval()
    model.config.use_cache = False  # as in training
    examples = [list(range(10, 27)), list(range(300, 341)), list(range(1000, 1005))]
    batch = packing_collator()([{"input_ids": ids, "labels": ids} for ids in examples])
    assert batch["input_ids"].shape == (1, sum(map(len, examples)))  # no padding at all
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        start = 0
        for ids in examples:
            alone = model(input_ids=torch.tensor([ids])).logits[0]
            torch.testing.assert_close(packed[start : start + len(ids)], alone, atol=1e-4, rtol=0)
            start += len(ids)


def test_no_label_crosses_an_example_boundary():
    batch = packing_collator()([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}, {"input_ids": [4, 5], "labels": [IGNORE_INDEX, 5]}])
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]


def test_a_pack_is_cut_at_example_boundaries_within_the_budget():
    examples = [[1] * 5, [2] * 3, [3] * 4, [4] * 9, [5] * 2]
    packed = packing_collator()([{"input_ids": ids, "labels": ids} for ids in examples])
    parts = split_packed(packed, token_budget=8)
    # 5+3 fit; 4 alone (4+9 would not); 9 is longer than the budget and stands alone; then 2.
    assert [part["input_ids"][0].tolist() for part in parts] == [[1] * 5 + [2] * 3, [3] * 4, [4] * 9, [5] * 2]
    assert all(part["position_ids"][0, 0] == 0 for part in parts)  # every part starts with an example
    for key in packed:
        assert torch.equal(torch.cat([part[key] for part in parts], dim=1), packed[key])
    assert split_packed(packed, token_budget=100) == [packed]


def test_a_step_in_token_budgeted_parts_learns_what_accumulated_micro_batches_learn(embedded_base):
    """The default recipe (2 examples x 4 micro-batches, max_length 256) on short examples: the step's
    8 examples go through in fewer forward passes, and the gradient is the one accumulation gives."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    examples = [torch.randint(10, 8000, (n,)).tolist() for n in (70, 95, 60, 110, 81, 52, 98, 70)]
    rows = [{"input_ids": ids, "labels": [IGNORE_INDEX] * 5 + ids[5:]} for ids in examples]
    collate = packing_collator()

    def gradient(micro_batches):
        model = AutoModelForCausalLM.from_pretrained(embedded_base.path)
        model.config.use_cache = False
        targets = sum(int((collate(batch)["labels"] != IGNORE_INDEX).sum()) for batch in micro_batches)
        for batch in micro_batches:
            for part in split_packed(collate(batch), step_budget(batch_size=2, max_length=256)):
                model(**part, num_items_in_batch=targets).loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    accumulated = gradient([rows[i : i + 2] for i in range(0, 8, 2)])  # 4 forward passes of 2 examples
    assert len(split_packed(collate(rows), step_budget(batch_size=2, max_length=256))) == 2
    torch.testing.assert_close(gradient([rows]), accumulated, atol=1e-5, rtol=1e-4)


def test_model_inputs_project_only_labelled_positions_in_recurring_shapes_and_learn_the_same(embedded_base):
    """The vocabulary projection is skipped at prompt positions and lengths are rounded up to a
    multiple of 32: what trains must not change."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    examples = [torch.randint(10, 8000, (n,)).tolist() for n in (40, 65, 30)]
    # Each example's first tokens are a prompt that carries no loss, as instruction data has.
    rows = [{"input_ids": ids, "labels": [IGNORE_INDEX] * 20 + ids[20:]} for ids in examples]
    packed = packing_collator()(rows)
    targets = int((packed["labels"] != IGNORE_INDEX).sum())  # 75, in a row of 135 tokens

    def loss_and_gradient(batch):
        model = AutoModelForCausalLM.from_pretrained(embedded_base.path)
        model.config.use_cache = False
        output = model(**batch, num_items_in_batch=targets)
        output.loss.backward()
        return output, torch.cat([p.grad.flatten() for p in model.parameters()])

    inputs = model_inputs(packed, quantum=32)
    assert inputs["input_ids"].shape[1] == 160 and inputs["logits_to_keep"].shape == (96,)
    everywhere, gradient = loss_and_gradient(packed)
    labelled, labelled_gradient = loss_and_gradient(inputs)
    assert labelled.logits.shape[1] == 96 < everywhere.logits.shape[1]
    torch.testing.assert_close(labelled.loss, everywhere.loss, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(labelled_gradient, gradient, atol=1e-6, rtol=1e-4)


def _tiny_gpt2(**config: object):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    settings = {"n_layer": 2, "n_embd": 64, "n_head": 4, "vocab_size": 500, "n_positions": 128, "attn_pdrop": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0}
    model = GPT2LMHeadModel(GPT2Config(**{**settings, **config}))
    model.config.use_cache = False
    return model


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_inputs_are_on_the_rows_device():
    """The Trainer moves a packed row to the model's device before ftreg completes it (and the
    scratch loop moves it too): what model_inputs adds must be made there."""
    row = packing_collator()([{"input_ids": list(range(5, 40)), "labels": list(range(5, 40))}])
    inputs = model_inputs({name: tensor.cuda() for name, tensor in row.items()})
    assert {tensor.device.type for tensor in inputs.values()} == {"cuda"}


@pytest.mark.parametrize(
    ("lengths", "computed"),
    [((37, 1, 64, 9, 23), "examples"), ((100, 1, 2, 1, 3), "row")],  # one long example: the row is cheaper
)
def test_packed_attention_computes_what_the_row_wide_mask_computes(lengths, computed):
    """In training, a packed row's attention runs example by example (`packed_attention`) rather
    than as one masked attention over the row: logits, loss and gradients must not change, for
    examples of every length down to one token and the filler that rounds the row's length."""
    from ftreg.engines.packed_attention import _plan

    torch.manual_seed(1)
    examples = [torch.randint(5, 500, (n,)).tolist() for n in lengths]
    inputs = model_inputs(packing_collator()([{"input_ids": ids, "labels": ids} for ids in examples]), quantum=32)
    assert _plan(inputs["position_ids"])[0] == computed

    def forward_backward(packed: bool):
        # With GPT-2's attention dropout; eval mode draws none, so both compute alike.
        model = _tiny_gpt2(scale_attn_by_inverse_layer_idx=True, attn_pdrop=0.1).eval()  # and a scale other than sdpa's default
        context = packed_training(model) if packed else contextlib.nullcontext()
        with context:
            output = model(**inputs)
        output.loss.backward()
        return output, torch.cat([p.grad.flatten() for p in model.parameters()])

    masked, masked_gradient = forward_backward(packed=False)
    per_example, per_example_gradient = forward_backward(packed=True)
    torch.testing.assert_close(per_example.logits, masked.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(per_example.loss, masked.loss)
    torch.testing.assert_close(per_example_gradient, masked_gradient, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize(("lengths", "computed"), [((37, 1, 64, 9, 23, 26), "examples"), ((100, 1, 2, 1, 3), "row")])
def test_packed_attention_drops_attention_weights_with_bits_dropout_masks_on_cpu(lengths, computed):
    """With GPT-2's attention dropout in training on a CPU, a packed row's attention is the masked
    attention with the dropout mask drawn as `BitsDropout` draws it (sdpa's CPU dropout draws a
    float an element): output and gradients, for either plan, the mask repeating with the seed."""
    from ftreg.engines.packed_attention import _plan, packed_attention
    from ftreg.engines.training_ops import kept_by_bits

    heads, p, scale = 4, 0.3, 0.2
    position_ids = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0)
    length, longest = position_ids.shape[1], max(lengths)
    assert _plan(position_ids)[0] == computed
    torch.manual_seed(5)
    query, key, value = (torch.randn(1, heads, length, 16, requires_grad=True) for _ in range(3))
    upstream = torch.randn(1, length, heads, 16)
    torch.manual_seed(6)
    output, _ = packed_attention(None, query, key, value, None, dropout=p, scaling=scale, position_ids=position_ids)
    gradients = torch.autograd.grad(output, (query, key, value), upstream)

    torch.manual_seed(6)  # the same draws, laid out over the row: per example, or the row at once
    if computed == "row":
        kept = kept_by_bits((1, heads, length, length), p)
    else:
        drawn, kept = kept_by_bits((len(lengths), heads, longest, longest), p), torch.ones(1, heads, length, length, dtype=torch.bool)
        for example, (start, n) in enumerate(zip(itertools.accumulate((0, *lengths)), lengths)):
            kept[0, :, start:start + n, start:start + n] = drawn[example, :, :n, :n]
    example = (position_ids[0] == 0).cumsum(0)
    allowed = (example[:, None] == example[None, :]) & torch.ones(length, length, dtype=torch.bool).tril()
    weights = torch.softmax((query @ key.transpose(-1, -2) * scale).masked_fill(~allowed, float("-inf")), dim=-1)
    expected = (weights * kept / (1 - p) @ value).transpose(1, 2)
    assert 0.2 < 1 - kept[0, :, allowed].float().mean() < 0.4  # about p of the weights dropped
    torch.testing.assert_close(output, expected, atol=1e-6, rtol=1e-5)
    for gradient, wanted in zip(gradients, torch.autograd.grad(expected, (query, key, value), upstream)):
        torch.testing.assert_close(gradient, wanted, atol=1e-6, rtol=1e-5)


def test_packed_attention_computes_in_fp32_under_cpu_autocast():
    """On CPU, sdpa's bf16 kernels are slower than its fp32 ones at these sizes, and less exact:
    under bf16 autocast a packed row's attention is computed in fp32 and handed back in bf16,
    for either plan."""
    import torch.nn.functional as F

    from ftreg.engines.packed_attention import packed_attention

    torch.manual_seed(2)
    for lengths in ((37, 1, 64, 9, 23), (100, 1, 2, 1, 3)):
        position_ids = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0)
        length = position_ids.shape[1]
        query, key, value = (torch.randn(1, length, 4, 16).transpose(1, 2).bfloat16() for _ in range(3))
        example = (position_ids[0] == 0).cumsum(0)
        mask = (example[:, None] == example[None, :]) & torch.ones(length, length, dtype=torch.bool).tril()
        exact = F.scaled_dot_product_attention(query.float(), key.float(), value.float(), attn_mask=mask).transpose(1, 2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output, _ = packed_attention(None, query, key, value, None, position_ids=position_ids)
        assert output.dtype == torch.bfloat16
        # fp32 attention rounded once to bf16 (within one bf16 step), not bf16 arithmetic throughout
        torch.testing.assert_close(output.float(), exact.bfloat16().float(), atol=1e-6, rtol=2**-7)


def test_packed_training_runs_gpt2_on_packed_attention_and_puts_sdpa_back():
    import transformers
    from packaging.version import Version
    from peft import LoraConfig, get_peft_model

    from ftreg.engines.packed_attention import FIRST_TRANSFORMERS

    # Older releases do not give the attention function what it needs: they keep sdpa's mask.
    expected = "ftreg_packed" if Version(transformers.__version__) >= Version(FIRST_TRANSFORMERS) else "sdpa"
    # With attention dropout or without (as the embedded base), plain or wrapped by peft.
    for model in (_tiny_gpt2(attn_pdrop=0.1), _tiny_gpt2(), get_peft_model(_tiny_gpt2(), LoraConfig(target_modules=["c_attn"], fan_in_fan_out=True))):
        config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
        with packed_training(model):
            assert config._attn_implementation == expected
        assert config._attn_implementation == "sdpa"
    eager = _tiny_gpt2(attn_implementation="eager", attn_pdrop=0.1)
    with packed_training(eager):  # only sdpa's row-wide mask is replaced
        assert eager.config._attn_implementation == "eager"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("num_items_in_batch", [None, 40])
def test_token_loss_is_transformers_loss_in_cache_sized_chunks(dtype, num_items_in_batch):
    """ftreg's token loss against transformers' on GPT-2's vocabulary (5 rows a chunk, the last
    chunk short): the same loss and gradient, a loss scale applied before rounding (so fp16 keeps
    small gradients), ignored rows getting none, and the same value without autograd."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    from ftreg.engines.training_ops import causal_lm_loss

    torch.manual_seed(3)
    vocab = 50257
    logits = (torch.randn(1, 23, vocab) * 4).to(dtype)
    targets = torch.randint(0, vocab, (1, 23))
    targets[0, ::4] = IGNORE_INDEX
    scale = 2.0**16  # fp16 training's loss scale

    def loss_and_gradient(loss_function):
        leaf = logits.clone().requires_grad_()
        loss = loss_function(leaf, None, vocab, num_items_in_batch=num_items_in_batch, shift_labels=targets)
        (loss * scale).backward()
        return loss, leaf.grad

    expected_loss, expected_gradient = loss_and_gradient(ForCausalLMLoss)
    loss, gradient = loss_and_gradient(causal_lm_loss)
    torch.testing.assert_close(loss, expected_loss)
    assert gradient.dtype == dtype and not gradient[0, ::4].any()
    # fp32 arithmetic rounded once to the logits' dtype, in both: at most one step apart
    step = {torch.float32: 1e-5, torch.bfloat16: 2**-7, torch.float16: 2**-10}[dtype]
    torch.testing.assert_close(gradient.float(), expected_gradient.float(), rtol=step, atol=1e-6)
    assert (gradient != 0).sum() == (expected_gradient != 0).sum()  # nothing flushed to zero
    with torch.no_grad():
        torch.testing.assert_close(causal_lm_loss(logits, None, vocab, num_items_in_batch=num_items_in_batch, shift_labels=targets), expected_loss)


def test_packed_training_computes_gelu_in_one_kernel_and_the_loss_in_chunks_then_puts_both_back():
    from peft import LoraConfig, get_peft_model
    from transformers.activations import NewGELUActivation

    from ftreg.engines.training_ops import causal_lm_loss

    for model in (_tiny_gpt2(), get_peft_model(_tiny_gpt2(), LoraConfig(target_modules=["c_fc"], fan_in_fan_out=True))):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        transformers_loss = base.loss_function
        with packed_training(model):
            assert [type(block.mlp.act) for block in base.transformer.h] == [torch.nn.GELU] * 2
            assert base.transformer.h[0].mlp.act.approximate == "tanh"
            assert base.loss_function is causal_lm_loss
        assert [type(block.mlp.act) for block in base.transformer.h] == [NewGELUActivation] * 2
        assert base.loss_function is transformers_loss


@pytest.mark.parametrize("p", [0.05, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bits_dropout_drops_with_probability_p_and_scales_as_torch_does(p, dtype):
    from ftreg.engines.training_ops import BitsDropout

    dropout = BitsDropout(p)
    values = torch.rand(1001, 999).add_(1).to(dtype).requires_grad_()  # a count that is no multiple of four
    torch.manual_seed(4)
    output = dropout(values)
    # Each 64-bit draw from torch's generator serves four elements: the generator moved on by a quarter of the count.
    next_draw = torch.randint(-(2**63), 2**63 - 1, (1,), dtype=torch.int64)
    torch.manual_seed(4)
    torch.randint(-(2**63), 2**63 - 1, (-(-values.numel() // 4),), dtype=torch.int64)
    assert torch.equal(torch.randint(-(2**63), 2**63 - 1, (1,), dtype=torch.int64), next_draw)
    kept = output != 0
    dropped_share = 1 - kept.float().mean().item()
    assert abs(dropped_share - p) < 5 * (p * (1 - p) / values.numel()) ** 0.5  # five standard deviations
    # what is kept is scaled as torch's dropout scales it: by its mask, 1 / (1 - p) in the input's dtype
    scale = torch.ones((), dtype=dtype).div_(1 - p)
    torch.testing.assert_close(output[kept], values[kept] * scale, rtol=0, atol=0)
    output.sum().backward()
    torch.testing.assert_close(values.grad, kept.to(dtype) * scale, rtol=0, atol=0)
    # the masks come from torch's generator: a seed repeats them, the next draw differs
    torch.manual_seed(4)
    assert torch.equal(dropout(values) != 0, kept)
    assert not torch.equal(dropout(values) != 0, kept)
    assert dropout.eval()(values) is values


def test_packed_training_draws_every_dropout_mask_with_bits_dropout_then_puts_torch_dropout_back():
    from peft import LoraConfig, get_peft_model

    from ftreg.engines.training_ops import BitsDropout

    model = get_peft_model(_tiny_gpt2(resid_pdrop=0.1, embd_pdrop=0.1), LoraConfig(target_modules=["c_attn"], fan_in_fan_out=True, lora_dropout=0.05))
    dropouts = {name: module for name, module in model.named_modules() if isinstance(module, torch.nn.Dropout)}
    assert any("lora_dropout" in name for name in dropouts) and any("resid" in name for name in dropouts)
    with packed_training(model):
        replaced = dict(model.named_modules())
        assert all(type(replaced[name]) is BitsDropout and replaced[name].p == module.p for name, module in dropouts.items())
    assert all(dict(model.named_modules())[name] is module for name, module in dropouts.items())


def test_token_loss_matches_transformers_on_unshifted_labels_and_on_steps_with_nothing_to_learn():
    """The loss shifts plain ``labels`` as transformers does; a micro-batch whose targets are all
    ignored gives zero gradient, not NaN, whatever the divisor; a negative label that is not the
    ignore index is refused as transformers refuses it."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    from ftreg.engines.training_ops import causal_lm_loss

    torch.manual_seed(5)
    logits = torch.randn(2, 9, 50)
    labels = torch.randint(0, 50, (2, 9))
    labels[:, :3] = IGNORE_INDEX
    nothing = torch.full_like(labels, IGNORE_INDEX)
    for targets, num_items_in_batch in ((labels, None), (labels, torch.tensor(7)), (nothing, None), (nothing, torch.tensor(0))):
        results = []
        for loss_function in (ForCausalLMLoss, causal_lm_loss):
            leaf = logits.clone().requires_grad_()
            loss = loss_function(leaf, targets, 50, num_items_in_batch=num_items_in_batch)
            loss.backward()
            results.append((loss, leaf.grad))
        (expected_loss, expected_gradient), (loss, gradient) = results
        torch.testing.assert_close(loss, expected_loss, equal_nan=True)
        torch.testing.assert_close(gradient, expected_gradient)
    with pytest.raises(IndexError):
        causal_lm_loss(logits, labels.masked_fill(labels == IGNORE_INDEX, -5), 50)


def test_packed_training_keeps_the_models_train_or_eval_mode_in_the_modules_it_swaps():
    """Evaluating under packed_training draws no dropout, and a mode set inside holds after."""
    model = _tiny_gpt2(resid_pdrop=0.5, embd_pdrop=0.5).eval()
    inputs = model_inputs(packing_collator()([{"input_ids": list(range(5, 40)), "labels": list(range(5, 40))}]), quantum=32)
    with torch.no_grad():
        expected = model(**inputs).logits
        with packed_training(model):
            torch.testing.assert_close(model(**inputs).logits, expected, atol=1e-5, rtol=1e-5)  # no dropout drawn
            model.train()
        assert all(module.training for module in model.modules())
        with packed_training(model):
            model.eval()
        assert not any(module.training for module in model.modules())
        torch.testing.assert_close(model(**inputs).logits, expected)


@pytest.mark.filterwarnings("error::UserWarning")  # no warning a user cannot act on
@pytest.mark.parametrize("tied", [True, False])
def test_packed_training_adds_a_tied_embeddings_gradient_row_by_row_and_learns_the_same(tied):
    """A tied token embedding's gradient from the lookup touches only the rows of the tokens seen:
    once a step has a gradient, they are added into it in place, never through a vocabulary-sized
    matrix (PyTorch writes one of zeros for a dense lookup, and copies the output layer's gradient
    to add a sparse one). Every parameter still ends with the dense gradient it gets without
    packing; an untied embedding keeps PyTorch's."""
    from torch.profiler import profile

    collate = packing_collator()
    steps = [[{"input_ids": list(range(5, 60)), "labels": list(range(5, 60))}], [{"input_ids": list(range(50, 90)), "labels": list(range(50, 90))}]]

    def gradients(packed: bool):
        model = _tiny_gpt2(tie_word_embeddings=tied).train()
        embedding = model.get_input_embeddings()
        context = packed_training(model) if packed else contextlib.nullcontext()
        with context:
            for rows in steps:  # two micro-batches accumulate into one step's gradient
                loss = model(**model_inputs(collate(rows), quantum=32), num_items_in_batch=torch.tensor(93)).loss
                with profile(record_shapes=True) as backward:
                    loss.backward()
        # The last micro-batch's passes over a vocabulary-sized matrix, besides adding its output layer's gradient in place.
        passes = [event.key for event in backward.events() if event.key in ("aten::zero_", "aten::copy_", "aten::add") and list(embedding.weight.shape) in event.input_shapes]
        assert model.get_input_embeddings() is embedding and "forward" not in vars(embedding)  # PyTorch's lookup is back
        assert all(parameter.grad.layout == torch.strided for parameter in model.parameters())
        return {name: parameter.grad for name, parameter in model.named_parameters()}, passes

    (expected, plain), (computed, packed) = gradients(packed=False), gradients(packed=True)
    assert "aten::zero_" in plain  # PyTorch's own lookup writes a matrix of zeros
    assert packed == ([] if tied else plain)
    assert expected.keys() == computed.keys()
    for name in expected:
        torch.testing.assert_close(computed[name], expected[name], atol=1e-6, rtol=1e-4, msg=name)


FAULTS_AND_RESIDENT_MEMORY = """
import json, resource, sys
import torch
sys.path.insert(0, sys.argv[1])
from test_packing import _tiny_gpt2
from ftreg.engines.batching import packed_training

def page_faults_reallocating(megabytes, times=4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.ones(megabytes << 18)  # megabytes of float32, written, then freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()

default = page_faults_reallocating(64)
with packed_training(_tiny_gpt2()):
    page_faults_reallocating(64, times=8)  # the first allocations grow the heap (how many depends on where small ones land)
    kept = page_faults_reallocating(64)
    resident_while_training = resident_bytes()
given_back = resident_while_training - resident_bytes()
block = torch.ones(1 << 28)  # 1 GiB, more than the heap kept: malloc's defaults map it apart and unmap it when freed
resident_with_block = resident_bytes()
del block
print(json.dumps({"default": default, "kept": kept, "given_back": given_back, "freed_after": resident_with_block - resident_bytes(),
                  "page": resource.getpagesize()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_packed_training_keeps_freed_memory_for_the_next_micro_batch_then_gives_it_back():
    """Every micro-batch allocates and frees the same large tensors (logits, the output layer's
    gradient). glibc hands each block over 32 MB back to the kernel when it is freed, so the next
    micro-batch's comes back as fresh pages, faulted in one at a time. While training, freed memory
    stays with the process; afterwards malloc's defaults are back and the kept memory is returned.
    (In a fresh process: what a process allocated before decides where malloc finds memory.)"""
    done = subprocess.run([sys.executable, "-c", FAULTS_AND_RESIDENT_MEMORY, str(Path(__file__).parent)], capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout.splitlines()[-1])
    pages = (64 << 20) // measured["page"]
    assert measured["default"] >= 3 * pages, measured  # each allocation faults its pages anew
    assert measured["kept"] <= pages // 10, measured
    assert measured["given_back"] >= (64 << 20) // 2, measured
    assert measured["freed_after"] >= 1 << 29, measured  # the defaults are back
