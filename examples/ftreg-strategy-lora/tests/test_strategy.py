"""The lora-fp32 strategy as ftreg loads it: it trains, publishes a PEFT adapter, and generation uses it."""

import pytest

import ftreg
from ftreg import plugins


def test_the_strategy_is_installed_with_its_own_options():
    strategy = plugins.get_training_strategy("lora-fp32")
    assert strategy.kind == "adapter"
    with pytest.raises(ftreg.ConfigError, match=r"strategy 'lora-fp32' has no option 'rank'"):
        ftreg.settings({"strategy": "lora-fp32", "dataset": "builtin:support", "name": "x"}, options={"rank": 4})


def test_it_trains_an_adapter_that_generate_loads(embedded_base, registry):
    spec = ftreg.settings({"strategy": "lora-fp32", "dataset": "builtin:support", "name": "fp", "max_steps": 3, "eval_split": 0},
                          options={"r": 4}, registry=registry)
    entry = ftreg.train(spec, registry=registry, show_progress=False)
    assert entry.kind == "adapter" and entry.config["options"] == {"r": 4, "alpha": 16}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(entry.manifest["files"])
    options = ftreg.GenerationOptions(greedy=True, max_new_tokens=8)
    assert isinstance(ftreg.load("fp-v1", registry=registry).generate("Where is my order?", options), str)
