"""`ftreg eval` and gated promotion, checked against numbers computed independently here."""

import json
import math

import pytest
from safetensors.torch import load_file, save

import ftreg
from conftest import republish
from ftreg import plugins
from ftreg.contract import Metric

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name, perfect", [("bleu", 100.0), ("rouge_l", 1.0), ("exact_match", 1.0)])
def test_a_perfect_prediction_scores_the_top_of_each_metric(name, perfect):
    answers = ["Start a return from the Orders page within 30 days.", "Use the tracking link in your shipping email."]
    assert plugins.metrics()[name].score(answers, list(answers)) == pytest.approx(perfect)
    assert plugins.metrics()[name].score(["Something else entirely."] * 2, answers) < perfect / 2


def test_loss_counts_only_answer_tokens_and_perplexity_is_its_exponential(support_adapter, registry):
    import torch

    result = ftreg.evaluate("support-v1", str(support_adapter), registry=registry)
    model = ftreg.load("support-v1", registry=registry)
    total, tokens = 0.0, 0
    for pair in json.loads(support_adapter.read_text()):
        # Training tokenizes the templated prompt and the answer each on its own, the answer followed by end-of-text.
        prompt = model.tokenizer(model.prompt_template.replace("{prompt}", pair["instruction"]))["input_ids"]
        answer = model.tokenizer(pair["response"])["input_ids"] + [model.tokenizer.eos_token_id]
        with torch.no_grad():
            logits = model.model(input_ids=torch.tensor([prompt + answer])).logits[0]
        # The answer's tokens are predicted from the positions just before each of them.
        total += torch.nn.functional.cross_entropy(logits[len(prompt) - 1 : -1], torch.tensor(answer), reduction="sum").item()
        tokens += len(answer)
    assert result.results["loss_tokens"] == tokens
    assert result.results["loss"] == pytest.approx(total / tokens, rel=1e-4)
    assert result.results["perplexity"] == pytest.approx(math.exp(total / tokens), rel=1e-4)


def test_an_evaluation_is_stored_with_the_version_and_never_changes_its_files(support_adapter, registry, cli_run):
    before = registry.resolve("support-v1").manifest
    first = cli_run("eval", "support-v1", "--dataset", support_adapter, "--limit", "3", "--json")
    assert first.exit_code == 0, first.output
    again = json.loads(cli_run("eval", "support-v1", "--dataset", support_adapter, "--limit", "3", "--json").stdout)
    assert not json.loads(first.stdout)["cached"] and again["cached"] and again["results"] == json.loads(first.stdout)["results"]
    entry = registry.resolve("support-v1")
    assert entry.manifest == before and registry.problems(entry) == []
    shown = json.loads(cli_run("show", "support-v1", "--json").stdout)["evaluations"]
    assert [each["settings"] for each in shown] == [{"format": "instruction", "limit": 3, "max_new_tokens": 64}]
    assert "rouge_l=" in cli_run("show", "support-v1").stdout and "perplexity=" in cli_run("list").stdout


def _variant(registry, name, scale):
    """Another version of support with its LoRA update scaled: 0 answers as the bare base does."""
    source = registry.resolve("support-v1")
    weights = {key: tensor * scale if "lora_B" in key else tensor for key, tensor in load_file(source.path / "adapter_model.safetensors").items()}
    return republish(registry, "support-v1", name, {"adapter_model.safetensors": save(weights)})


def test_the_gate_moves_the_alias_only_to_a_better_version(support_adapter, registry, cli_run):
    _variant(registry, "support", 0.0)  # support-v2: the base's answers, a worse loss on the adapter's data
    registry.tag("support-v2", "prod")
    moved = cli_run("tag", "support-v1", "prod", "--if-better", "loss", "--dataset", support_adapter)
    assert moved.exit_code == 0, moved.output
    assert registry.resolve("support@prod").ref == "support-v1" and "loss" in moved.stdout and "support-v2" in moved.stdout
    evidence = registry.alias_history("support", "prod")[-1]["evidence"]
    assert evidence["candidate"]["value"] < evidence["holder"]["value"] and evidence["fingerprint"]

    refused = cli_run("tag", "support-v2", "prod", "--if-better", "loss")  # both were measured on that data already
    assert refused.exit_code == 1 and "stays at support-v1" in refused.stderr
    assert registry.resolve("support@prod").ref == "support-v1"

    republish(registry, "support-v1", "support")  # support-v3: the same weights, so the same loss
    equal = cli_run("tag", "support-v3", "prod", "--if-better", "loss", "--dataset", support_adapter)
    assert equal.exit_code == 1 and registry.resolve("support@prod").ref == "support-v1"
    within = cli_run("tag", "support-v2", "prod", "--if-better", "perplexity", "--min-delta", "1000")
    assert within.exit_code == 1 and "by more than 1000" in within.stderr
    assert len(registry.alias_history("support", "prod")) == 2  # the first tag and the one gated move
    why = cli_run("history", "support@prod").stdout.splitlines()[-1]
    assert "support-v1" in why and f"loss {evidence['candidate']['value']:.6g} < {evidence['holder']['value']:.6g} (support-v2) on " in why


def test_a_metric_plugin_is_measured_by_eval_and_can_gate(support_adapter, registry, cli_run, register_plugin):
    class Shortness:
        @ftreg.hookimpl
        def register_metrics(self, register):
            register(Metric("answer_chars", "mean characters per answer", False, lambda predictions, references: sum(map(len, predictions)) / len(predictions)))

    result = ftreg.evaluate("support-v1", str(support_adapter), limit=2, registry=registry)
    assert "answer_chars" not in result.results
    register_plugin(Shortness(), "shortness")
    cached = ftreg.evaluate("support-v1", str(support_adapter), limit=2, registry=registry)  # scored from the stored answers
    assert cached.cached and cached.results["answer_chars"] == pytest.approx(sum(map(len, cached.answers)) / 2)
    _variant(registry, "support", 0.0)
    registry.tag("support-v2", "prod")
    gated = cli_run("tag", "support-v1", "prod", "--if-better", "answer_chars", "--dataset", support_adapter)
    assert "answer_chars" in gated.stdout + gated.stderr
    candidate, holder = (ftreg.evaluate(ref, str(support_adapter), registry=registry).results["answer_chars"] for ref in ("support-v1", "support-v2"))
    assert gated.exit_code == (0 if candidate < holder else 1)  # fewer characters is better
    assert registry.resolve("support@prod").ref == ("support-v1" if candidate < holder else "support-v2")
    unknown = cli_run("tag", "support-v1", "prod", "--if-better", "charm")
    assert unknown.exit_code == 2 and "unknown metric 'charm'" in unknown.stderr and "answer_chars" in unknown.stderr


def test_a_metric_with_a_bad_name_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"Metric.name 'loss' is measured from the model"):
        Metric("loss", "", False, lambda p, r: 0.0)
