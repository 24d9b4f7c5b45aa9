import hashlib
from dataclasses import asdict
from importlib.resources import files

import pytest

from ftreg.bases.embedded import EMBEDDED_BASE_NAME, BaseRecipe, build, dependency_closure, ensure_embedded_base, prose

MICRO = BaseRecipe(vocab_size=400, n_positions=64, n_embd=32, n_layer=2, n_head=2, block_size=32, batch_size=4, steps=8, warmup_steps=2, domain_steps=4)


def _topics() -> tuple[str, ...]:
    """pydoc's topic texts: part of the real corpus, and read in no time (the whole corpus takes minutes)."""
    from pydoc_data.topics import topics

    return tuple(topics[key] for key in sorted(topics))


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_building_from_the_recipe_is_deterministic_and_the_seed_matters(tmp_path):
    first, second, other_seed = tmp_path / "first", tmp_path / "second", tmp_path / "other-seed"
    for directory in (first, second, other_seed):
        directory.mkdir()
    record = build(MICRO, first, show_progress=False, documents=_topics())
    build(MICRO, second, show_progress=False, documents=_topics())
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert _digest(first / name) == _digest(second / name), name
    assert record["recipe"] == asdict(MICRO)
    assert record["metrics"]["parameters"] > 0 and record["metrics"]["eval_loss"] > 0
    build(BaseRecipe(**{**asdict(MICRO), "seed": 7}), other_seed, show_progress=False, documents=_topics())
    assert _digest(first / "model.safetensors") != _digest(other_seed / "model.safetensors")


def test_shipped_base_is_published_once_with_its_recipe(registry):
    entry = ensure_embedded_base(registry)
    assert entry.ref == f"{EMBEDDED_BASE_NAME}-v1" and entry.kind == "checkpoint"
    assert entry.manifest["shipped"] is True
    # The shipped weights were made by today's recipe: the two cannot drift apart unnoticed.
    assert entry.config == asdict(BaseRecipe())
    # Its record names the support data its domain phase read, and that is the data ftreg ships.
    shipped_support = files("ftreg.resources") / "support" / "train.json"
    assert entry.manifest["dataset"]["domain"] == {"source": "builtin:support", "sha256": hashlib.sha256(shipped_support.read_bytes()).hexdigest()}
    assert ensure_embedded_base(registry).ref == entry.ref
    assert len(registry.entries()) == 1


def test_shipped_base_is_a_real_gpt2(registry):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel
    from transformers.pytorch_utils import Conv1D

    entry = ensure_embedded_base(registry)
    model = AutoModelForCausalLM.from_pretrained(entry.path)
    assert isinstance(model, GPT2LMHeadModel)
    assert isinstance(model.transformer.h[0].attn.c_attn, Conv1D)
    assert 4_000_000 < model.num_parameters() < 10_000_000
    tokenizer = AutoTokenizer.from_pretrained(entry.path)
    text = "Refunds arrive in 5–7 days. Ünïcödé and emoji 🙂 survive byte-level BPE."
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    assert tokenizer.eos_token == "<|endoftext|>"



def test_the_corpus_is_the_prose_of_what_installing_ftreg_brings():
    closure = dependency_closure()
    assert {"torch", "transformers", "peft", "datasets", "tokenizers", "numpy"} <= set(closure)
    assert "ftreg" not in closure and "pytest" not in closure  # extras (test tools) are not part of it
    docstring = """Return the refund.

    The refund goes back to the card that paid for the order, within a week of the return.

    >>> refund(order)
    Decimal('12.50')

    Args:
        order (Order): the order to refund, with its items and payments.
    """
    assert prose(docstring) == "The refund goes back to the card that paid for the order, within a week of the return."
