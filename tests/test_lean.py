"""`ftreg generate` runs GPT-2 and LoRA with torch alone (ftreg.inference.lean): it must compute what
transformers and peft compute, and leave everything else to them."""

import json

import pytest
import torch
from safetensors.torch import save_file
from test_train_generate import PAIRS

import ftreg
from ftreg.errors import FtregError
from ftreg.inference import lean
from ftreg.inference.options import GenerationOptions

PROMPTS = [pair["instruction"] for pair in PAIRS] + ["Tell me something else entirely"]
DECODINGS = [GenerationOptions(greedy=True, max_new_tokens=24), GenerationOptions(seed=3, max_new_tokens=24), GenerationOptions(seed=5, temperature=1.3, top_k=0, top_p=0.5, repetition_penalty=1.0)]


def _gpt2(path, **config):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=96, n_positions=32, n_embd=32, n_layer=2, n_head=4, initializer_range=0.3, **config)  # wide weights: differences show
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(path)
    return model


def _lora(model, path, **config):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    lora = LoraConfig(**{"r": 4, "lora_alpha": 8, "target_modules": ["c_attn", "c_proj", "c_fc"], "fan_in_fan_out": True, "init_lora_weights": False, **config})
    model = get_peft_model(model, lora).eval()  # init_lora_weights=False: B is random too, so the update is not zero
    model.save_pretrained(path)
    return model


def _assert_same_logits(reference, path, adapter=None):
    ids = torch.tensor([[5, 17, 42, 8, 91, 3]])
    loaded = lean.load(path, adapter)
    assert loaded is not None
    with torch.no_grad():
        expected = reference(ids).logits[:, -1]
    cache: list = []
    got = loaded.forward(ids[:, :4], cache)  # a prompt, then two steps from the cache, as generation runs
    got = loaded.forward(ids[:, 4:5], cache)
    got = loaded.forward(ids[:, 5:], cache)[:, -1]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", [{}, {"activation_function": "gelu_pytorch_tanh"}, {"activation_function": "gelu", "tie_word_embeddings": False}])
def test_lean_gpt2_computes_transformers_logits(tmp_path, config):
    _assert_same_logits(_gpt2(tmp_path, **config), tmp_path)


@pytest.mark.parametrize("config", [{}, {"target_modules": ["c_attn"], "use_rslora": True}])
def test_lean_lora_computes_peft_logits(tmp_path, config):
    model = _gpt2(tmp_path / "base")
    adapter = _lora(model, tmp_path / "adapter", **config)
    _assert_same_logits(adapter, tmp_path / "base", tmp_path / "adapter")


def test_the_hubs_original_gpt2_layout_loads(tmp_path):
    """openai-community/gpt2's model.safetensors names its tensors without "transformer." and stores no lm_head."""
    model = _gpt2(tmp_path)
    weights = {key.removeprefix("transformer."): value.contiguous() for key, value in model.state_dict().items() if key != "lm_head.weight"}
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    _assert_same_logits(model, tmp_path)


@pytest.mark.parametrize(
    "change",
    [
        lambda base, adapter: _edit_json(base / "config.json", scale_attn_by_inverse_layer_idx=True),
        lambda base, adapter: _edit_json(base / "config.json", model_type="gpt_neo"),
        lambda base, adapter: _edit_json(base / "generation_config.json", no_repeat_ngram_size=3),
        lambda base, adapter: (base / "model.safetensors").unlink(),
        lambda base, adapter: _edit_json(base / "tokenizer_config.json", clean_up_tokenization_spaces=True),
        lambda base, adapter: (base / "generation_config.json").unlink(),  # config.json's decoding settings would apply
        lambda base, adapter: _edit_json(base / "generation_config.json", eos_token_id=[1, 2]),
        lambda base, adapter: _edit_json(adapter / "adapter_config.json", init_lora_weights="pissa"),
        lambda base, adapter: _edit_json(adapter / "adapter_config.json", use_dora=True),
        lambda base, adapter: _edit_json(adapter / "adapter_config.json", target_modules=["c_attn"]),  # the file holds more than that
        lambda base, adapter: _edit_json(adapter / "adapter_config.json", target_modules="c_attn|c_fc"),
    ],
)
def test_anything_else_is_left_to_transformers_and_peft(tmp_path, change):
    model = _gpt2(tmp_path / "base")
    _lora(model, tmp_path / "adapter")
    assert lean.load(tmp_path / "base", tmp_path / "adapter") is not None
    change(tmp_path / "base", tmp_path / "adapter")
    assert lean.load(tmp_path / "base", tmp_path / "adapter") is None


def _edit_json(path, **changes):
    data = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**data, **changes}))


@pytest.mark.slow
def test_lean_answers_are_transformers_answers(support_adapter):
    """Greedy and sampled, the same seed gives the same words, for an adapter and for a bare base."""
    for adapter, base in (("support", None), (None, "tiny-gpt2")):
        lean_model, full = ftreg.load(adapter, base=base, lean=True), ftreg.load(adapter, base=base)
        assert type(lean_model.model).__name__ == "LeanGPT2" and type(full.model).__name__ != "LeanGPT2"
        for options in DECODINGS:
            for prompt in PROMPTS:
                assert lean_model.generate(prompt, options) == full.generate(prompt, options), (adapter, base, options, prompt)


@pytest.mark.slow
def test_lean_models_give_one_completion_at_a_time(support_adapter):
    composed = ftreg.load("support", lean=True)
    ids = composed.encode("Where is my package?")
    with pytest.raises(FtregError, match="without `lean`"):
        composed.complete(ids, n=2)
