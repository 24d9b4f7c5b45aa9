import json
import re
import shutil

import pytest

from conftest import write_json
from ftreg.registry import Registry

PAIRS = [
    {"instruction": "How do I return an item?", "response": "Start a return from the Orders page within 30 days."},
    {"instruction": "Where is my package?", "response": "Use the tracking link in your shipping email."},
    {"instruction": "How do I reset my password?", "response": "Click Forgot password on the sign-in page."},
    {"instruction": "When will I get my refund?", "response": "Refunds arrive within 5 to 7 business days."},
    {"instruction": "Can I cancel my order?", "response": "Yes, within one hour using Cancel order."},
    {"instruction": "Is shipping free?", "response": "Standard shipping is free over 50 dollars."},
]
QUICK = ["--max-steps", "4", "--batch-size", "2", "--grad-accum", "1", "--logging-steps", "1", "--eval-split", "0.25"]


@pytest.fixture
def dataset(tmp_path):
    return write_json(tmp_path / "support.json", PAIRS)


def _train(cli_run, dataset, *extra):
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", dataset, "--name", "support", *QUICK, *extra)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_lora8bit_trains_publishes_and_reloads_with_plain_peft(cli_run, embedded_base, registry, dataset):
    assert _train(cli_run, dataset) == "support-v1"
    entry = registry.resolve("support")
    assert entry.kind == "adapter" and entry.strategy == "lora8bit" and entry.base == "tiny-gpt2-v1"
    assert {"adapter_config.json", "adapter_model.safetensors", "training_args.json"} <= set(entry.manifest["files"])
    assert not [f for f in entry.manifest["files"] if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert {"train_loss", "eval_loss", "train_tokens_per_s"} <= set(entry.metrics)
    assert entry.manifest["dataset"]["format"] == "instruction" and entry.manifest["dataset"]["examples"] == len(PAIRS)
    assert entry.manifest["base_fingerprint"].startswith("sha256-v2:")  # config, tokenizer and weights
    args = json.loads((entry.path / "training_args.json").read_text())
    assert args["gradient_accumulation_steps"] == 1 and args["max_steps"] == 4 and args["seed"] == 42

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_config = json.loads((entry.path / "adapter_config.json").read_text())
    assert adapter_config["fan_in_fan_out"] is True and set(adapter_config["target_modules"]) == {"c_attn", "c_proj", "c_fc"}
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(embedded_base.path), entry.path).eval()
    tokenizer = AutoTokenizer.from_pretrained(embedded_base.path)
    assert any(torch.count_nonzero(p) for n, p in model.named_parameters() if "lora_B" in n)  # B starts at zero: it trained

    prompt = entry.manifest["prompt_template"].replace("{prompt}", "Is shipping free?")
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, do_sample=False, max_new_tokens=12, repetition_penalty=1.1, pad_token_id=tokenizer.eos_token_id)
    expected = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    result = cli_run("generate", "--adapter", "support-v1", "--greedy", "--max-new-tokens", "12", "Is shipping free?")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == expected


def test_generate_with_bare_base_and_options(cli_run, embedded_base):
    """Cheap: a bare base needs no training. A seed makes sampling repeatable; --greedy needs no seed."""

    def completions(*options):
        result = cli_run("generate", "--base", "tiny-gpt2", "--max-new-tokens", "8", "--json", *options, "Hello", "Where")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert [item["prompt"] for item in data] == ["Hello", "Where"]
        assert {item["model"] for item in data} == {"tiny-gpt2-v1"}
        return [item["completion"] for item in data]

    sampled = completions("--temperature", "1.5", "--seed", "7")
    assert sampled == completions("--temperature", "1.5", "--seed", "7")  # the same seed, the same text
    assert sampled != completions("--temperature", "1.5", "--seed", "8")  # another seed samples something else
    assert all(sampled)

    greedy = completions("--greedy")
    assert greedy == completions("--greedy") == completions("--greedy", "--seed", "8", "--temperature", "1.5")
    assert greedy != sampled  # at temperature 1.5 sampling does not happen to pick the likeliest tokens

    # --greedy is what plain transformers' greedy decoding gives (a bare base gets the prompt as it is).
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_base.path)
    model = AutoModelForCausalLM.from_pretrained(embedded_base.path).eval()
    expected = []
    for prompt in ("Hello", "Where"):
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(**inputs, do_sample=False, max_new_tokens=8, repetition_penalty=1.1, pad_token_id=tokenizer.eos_token_id)
        expected.append(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    assert greedy == expected


def _one_line_error(result, pattern):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.slow
def test_wrong_base_is_refused_before_loading(cli_run, embedded_base, registry, dataset, tmp_path):
    _train(cli_run, dataset)
    other = tmp_path / "other-base"
    shutil.copytree(embedded_base.path, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "n_positions": 64}))
    _one_line_error(cli_run("generate", "--adapter", "support", "--base", other, "Hi"), r"support-v1 was trained on base tiny-gpt2-v1 .* refusing")


@pytest.mark.slow
def test_missing_adapter_file(cli_run, embedded_base, registry, dataset):
    _train(cli_run, dataset)
    (registry.resolve("support").path / "adapter_model.safetensors").unlink()
    _one_line_error(cli_run("generate", "--adapter", "support", "Hi"), r"support-v1: file adapter_model.safetensors is missing")


def test_unknown_references(cli_run, embedded_base):
    _one_line_error(cli_run("generate", "--adapter", "nope", "Hi"), r"unknown reference 'nope'")
    _one_line_error(cli_run("generate", "--base", "no-such-base-here", "Hi"), r"base 'no-such-base-here' is not a registry checkpoint")


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("[]", r"support\.json: the dataset has no examples"),
        ("", r"support\.json: the file is empty"),
        ('[{"instruction": "a", "response": "b"},\n{"instruction": "c"', r"support\.json:2:\d+: invalid JSON"),
        ('{"instruction": "a"}', r"support\.json:1: missing key 'response'"),
    ],
)
def test_bad_datasets_publish_nothing(cli_run, embedded_base, registry, tmp_path, content, pattern):
    path = tmp_path / "support.json"
    path.write_text(content)
    before = [e.ref for e in registry.entries()]
    _one_line_error(cli_run("train", "--strategy", "lora8bit", "--dataset", path, "--name", "support"), pattern)
    assert [e.ref for e in Registry(registry.home).entries()] == before


def test_bad_settings_name_the_field(cli_run, embedded_base, dataset):
    _one_line_error(cli_run("train", "--strategy", "lora8bit", "--dataset", dataset, "--name", "support", "--epochs", "0"), r"epochs must be > 0")
    _one_line_error(cli_run("train", "--strategy", "nope", "--dataset", dataset, "--name", "support"), r"unknown training strategy 'nope'; available: full-fp16, lora8bit, scratch")
    _one_line_error(cli_run("train", "--strategy", "lora8bit", "--dataset", "builtin:nope", "--name", "support"), r"unknown built-in dataset")
    _one_line_error(cli_run("train", "--strategy", "lora8bit", "--dataset", dataset, "--name", "Bad/Name"), r"invalid name 'Bad/Name'")


@pytest.mark.slow
def test_same_seed_same_adapter(cli_run, embedded_base, registry, dataset):
    _train(cli_run, dataset)
    _train(cli_run, dataset)
    _train(cli_run, dataset, "--seed", "7")
    digests = [e.manifest["files"]["adapter_model.safetensors"]["sha256"] for e in registry.entries("support")]
    assert digests[0] == digests[1] != digests[2]
