import pytest

from ftreg.formats import Example, Segment
from ftreg.datasets.encoding import IGNORE_INDEX, encode, split

PROMPT = "### Instruction:\nWhere is my order?\n\n### Response:\n"
EXAMPLE = Example((Segment(PROMPT, False), Segment("It ships today.", True, eos=True)), line=3)


@pytest.fixture
def tokenizer(embedded_base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_base.path)


def test_prompt_is_masked_and_response_with_eos_carries_loss(tokenizer):
    [encoded], truncated = encode([EXAMPLE], tokenizer, max_length=256)
    n_prompt = len(tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    assert truncated == 0 and encoded.line == 3
    assert encoded.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert encoded.labels[n_prompt:] == encoded.input_ids[n_prompt:]
    assert encoded.input_ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(encoded.input_ids[n_prompt:-1]) == "It ships today."


def test_truncation_is_counted_and_examples_without_loss_are_dropped(tokenizer):
    n_prompt = len(tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    [kept], truncated = encode([EXAMPLE], tokenizer, max_length=n_prompt + 1)
    assert truncated == 1 and len(kept.input_ids) == n_prompt + 1
    dropped, truncated = encode([EXAMPLE], tokenizer, max_length=n_prompt)
    assert dropped == [] and truncated == 1


def test_split_is_seeded_and_disjoint():
    items = list(range(50))
    train, held = split(items, 0.2, seed=1)
    assert len(held) == 10 and sorted(train + held) == items
    assert split(items, 0.2, seed=1) == (train, held)
    assert split(items, 0.2, seed=2)[1] != held
    assert split(items, 0.0, seed=1) == (items, [])
