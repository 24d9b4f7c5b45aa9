"""The serving pool: adapters of one base loaded, switched, evicted and refilled, each answering as it alone would."""

import pytest
from safetensors.torch import load_file, save

import ftreg
from conftest import publish_files, republish
from ftreg.inference.options import GenerationOptions
from ftreg.inference.pool import ModelPool, PoolFull

pytestmark = pytest.mark.slow
GREEDY = GenerationOptions(greedy=True, max_new_tokens=10, repetition_penalty=1.0)
QUESTION = "Where is my order?"


def _variant(registry, source, name, scale):
    """A second adapter of the same shape: the source's LoRA update scaled, so it answers differently."""
    weights = {key: tensor * scale if "lora_B" in key else tensor for key, tensor in load_file(source.path / "adapter_model.safetensors").items()}
    return republish(registry, source.ref, name, {"adapter_model.safetensors": save(weights)})


def test_every_adapter_answers_as_it_alone_would_through_swaps_evictions_and_refills(support_adapter, registry):
    source = registry.resolve("support-v1")
    for name, scale in (("minus", -1.0), ("double", 2.0)):
        _variant(registry, source, name, scale)
    refs = ["support-v1", "minus-v1", "double-v1", "tiny-gpt2-v1"]
    alone = {ref: ftreg.load(ref, registry=registry).generate(QUESTION, GREEDY) for ref in refs}
    assert len(set(alone.values())) == len(refs), alone  # the adapters really differ
    pool = ModelPool(registry, max_adapters=2)
    for ref in refs + refs[::-1] + refs:  # three adapters through two slots: every kind of move
        with pool.serving(ref) as served:
            assert served.composed.generate(QUESTION, GREEDY) == alone[ref], ref
    assert pool.resident() == ["tiny-gpt2-v1", "minus-v1", "double-v1"]  # the base and the two most recently used
    assert pool._slots == 2  # every eviction refilled a slot of the same shape instead of rebuilding layers


def test_an_adapter_of_another_base_is_refused_when_the_pool_is_full(support_adapter, registry, tmp_path):
    pool = ModelPool(registry, max_bases=1)
    with pool.serving("support-v1"):
        pass
    other = ftreg.export("tiny-gpt2-v1", tmp_path / "copy", registry=registry)
    config = other / "config.json"
    config.write_text(config.read_text().replace('"n_layer": 4', '"n_layer": 4, "note": "another base"'))
    publish_files(registry, "otherbase", {rel.name: rel.read_bytes() for rel in other.iterdir() if rel.is_file()}, kind="checkpoint")
    with pytest.raises(PoolFull, match=r"otherbase-v1 is a base this server has no room for \(`max_bases` 1: tiny-gpt2-v1 loaded\)"):
        with pool.serving("otherbase-v1"):
            pass


def test_requests_for_different_adapters_arriving_together_share_a_batch_and_answer_as_alone(support_adapter, registry):
    from concurrent.futures import ThreadPoolExecutor

    from ftreg.inference.batching import Batcher

    source = registry.resolve("support-v1")
    for name, scale in (("minus", -1.0), ("double", 2.0)):
        _variant(registry, source, name, scale)
    questions = [QUESTION, "Can I return shoes I wore once?", "Hi", "How do I reset my password on the app?"]
    cases = [(ref, question) for question in questions for ref in ("support-v1", "minus-v1", "double-v1", "tiny-gpt2-v1")]
    alone = {case: ftreg.load(case[0], registry=registry).generate(case[1], GREEDY) for case in cases}
    pool = ModelPool(registry, max_adapters=3)
    batcher = Batcher(pool, window_s=0.2, max_batch=8)

    def ask(case):
        ref, question = case
        return batcher.complete(ref, lambda served: served.composed.encode(question, GREEDY), GREEDY)[0].text

    with ThreadPoolExecutor(8) as threads:
        answers = dict(zip(cases, threads.map(ask, cases)))
    assert answers == alone
    # Eight requests for three adapters and the bare base fill three slots: one generate call, not split.
    assert 8 in batcher.sizes, batcher.sizes


def test_a_lone_request_is_not_held_for_company_that_is_not_coming(support_adapter, registry):
    """The window bounds the wait for clients the server has been serving; with no other client, nothing waits."""
    import time

    from ftreg.inference.batching import Batcher

    batcher = Batcher(ModelPool(registry), window_s=60)
    for _ in range(2):
        started = time.monotonic()
        batcher.complete("support-v1", lambda served: served.composed.encode(QUESTION, GREEDY), GREEDY)
        assert time.monotonic() - started < 30  # a fixed window would hold each for 60 s


def test_a_full_queue_is_refused_not_piled_up(support_adapter, registry):
    from ftreg.inference.batching import Batcher, Overloaded

    batcher = Batcher(ModelPool(registry), max_queue=0)
    with pytest.raises(Overloaded, match=r"`max_queue` 0\); retry later"):
        batcher.complete("support-v1", lambda served: [1], GREEDY)


def test_a_refill_refuses_weights_that_do_not_fit_the_slot(support_adapter, registry):
    import torch

    from ftreg.errors import ArtifactError

    source = registry.resolve("support-v1")
    weights = load_file(source.path / "adapter_model.safetensors")
    weights["base_model.model.transformer.h.0.attn.c_attn.lora_Z.weight"] = torch.zeros(2, 2)
    republish(registry, "support-v1", "odd", {"adapter_model.safetensors": save(weights)})
    pool = ModelPool(registry, max_adapters=1)
    with pool.serving("support-v1"):
        pass
    with pytest.raises(ArtifactError, match=r"odd-v1: adapter weights do not fit"):
        with pool.serving("odd-v1"):
            pass
    with pool.serving("support-v1") as served:  # the pool still works, with no slot left behind
        assert served.composed.generate(QUESTION, GREEDY) == ftreg.load("support-v1", registry=registry).generate(QUESTION, GREEDY)
    assert list(served.base.model.peft_config) == [served.adapter]
