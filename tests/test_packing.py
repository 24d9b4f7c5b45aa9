"""Packed batches must compute exactly what separate examples compute."""

import torch

from ftreg.datasets.encoding import IGNORE_INDEX
from ftreg.engines.batching import packing_collator


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
