"""The CLI's fast paths must not import the heavy ML stack (it costs seconds)."""

import json
import subprocess
import sys

import pytest

from conftest import HEAVY_MODULES, publish_files

PROBE = """
import sys
from ftreg.cli import cli
try:
    cli(sys.argv[1:], standalone_mode=False)
finally:
    print("HEAVY=" + json.dumps([m for m in {heavy} if m in sys.modules]))
""".replace("{heavy}", repr(HEAVY_MODULES))


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "--json"], ["show", "support"], ["show", "support-v1", "--json"], ["plugins"], ["plugins", "--json"]])
def test_fast_paths_do_not_import_heavy_modules(args, registry):
    publish_files(registry, "support")
    result = subprocess.run([sys.executable, "-c", "import json\n" + PROBE, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    heavy = json.loads(result.stdout.rsplit("HEAVY=", 1)[1])
    assert heavy == []


def _imported(*args) -> tuple[subprocess.CompletedProcess, list[str]]:
    result = subprocess.run([sys.executable, "-c", "import json\n" + PROBE, *args], capture_output=True, text=True, timeout=300)
    return result, json.loads(result.stdout.rsplit("HEAVY=", 1)[1])


@pytest.mark.slow
def test_generate_runs_on_torch_alone(support_adapter):
    """transformers, peft and bitsandbytes cost seconds to import; a GPT-2 and its LoRA adapter need none of them."""
    for args in (["--adapter", "support"], ["--base", "tiny-gpt2"]):
        result, heavy = _imported("generate", *args, "--greedy", "--max-new-tokens", "4", "How do I return an item?")
        assert result.returncode == 0 and result.stdout.split("HEAVY=")[0].strip(), result.stderr
        assert heavy == ["torch"], (args, heavy)


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "--adapter", "nope", "hi"],
        ["generate", "--base", "nope-v3", "hi"],
        ["train", "--strategy", "lora8bit", "--dataset", "missing.jsonl", "--name", "x"],
        ["export", "nope", "out"],
    ],
)
def test_mistakes_are_reported_before_any_heavy_import(args, registry):
    publish_files(registry, "support")
    result, heavy = _imported(*args)
    assert result.returncode != 0 and heavy == [], (heavy, result.stderr)


EIGHT_BIT_AFTER_COMPOSING = """
import json, sys
from ftreg.engines.quiet import bitsandbytes_noise_silenced
from ftreg.inference.compose import bitsandbytes_hidden

from transformers import AutoModelForCausalLM, BitsAndBytesConfig

with bitsandbytes_hidden():  # as composing an adapter on the full-precision base does
    from peft import LoraConfig, get_peft_model

    get_peft_model(AutoModelForCausalLM.from_pretrained(sys.argv[1]), LoraConfig(target_modules=["c_attn"], fan_in_fan_out=True))

with bitsandbytes_noise_silenced():
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map={"": "cpu"})
    model = get_peft_model(model, LoraConfig(target_modules=["c_attn"], fan_in_fan_out=True))
layer = model.base_model.model.transformer.h[0].attn.c_attn
print("RESULT=" + json.dumps([type(layer).__module__, model.peft_config["default"].fan_in_fan_out]))
"""


@pytest.mark.slow
def test_eight_bit_training_after_composing_in_the_same_process_gets_peft_s_eight_bit_layers(embedded_base):
    """Composition hides bitsandbytes from peft; 8-bit LoRA later in the same process (a notebook,
    a server that trains) must find it again. Otherwise peft takes the 8-bit layers for plain Linear
    ones and rewrites the adapter's config to fan_in_fan_out=False, wrong for GPT-2's transposed weights."""
    result = subprocess.run([sys.executable, "-c", EIGHT_BIT_AFTER_COMPOSING, str(embedded_base.path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.rsplit("RESULT=", 1)[1]) == ["peft.tuners.lora.bnb", True]
