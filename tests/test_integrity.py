"""Integrity and lineage: hashes checked on load, `ftreg verify`, alias history, diff, model cards."""

import json

import pytest

from conftest import publish_files, safetensors_bytes
from test_train_generate import PAIRS, QUICK


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_reports_every_problem(cli_run, registry):
    first = publish_files(registry, "a", {"adapter_model.safetensors": safetensors_bytes("x" * 100), "adapter_config.json": b"{}"})
    second = publish_files(registry, "b")
    assert cli_run("verify", "--all").stdout.strip() == "2 versions checked, 0 problems"
    _flip_a_byte(first.path / "adapter_model.safetensors")
    (first.path / "adapter_config.json").unlink()
    (second.path / "adapter_model.safetensors").write_bytes(b"replaced")
    result = cli_run("verify", "--all")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"a-v1: file adapter_config.json is missing from {first.path}",
        "a-v1: file adapter_model.safetensors does not match its recorded sha256 (corrupted or modified)",
        "b-v1: file adapter_model.safetensors does not match its recorded sha256 (corrupted or modified)",
    ]
    assert cli_run("verify", "b-v1").stdout.strip() == "1 version checked, 1 problem"


@pytest.mark.slow
def test_a_flipped_byte_is_refused_on_load(cli_run, embedded_base, registry, tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps(PAIRS))
    assert cli_run("train", "--strategy", "lora8bit", "--dataset", data, "--name", "support", *QUICK).exit_code == 0
    _flip_a_byte(registry.resolve("support").path / "adapter_model.safetensors")
    result = cli_run("generate", "--adapter", "support", "Hi")
    assert result.exit_code == 2 and "support-v1: file adapter_model.safetensors does not match its recorded sha256" in result.stderr
    _flip_a_byte(embedded_base.path / "model.safetensors")  # the base is checked too
    result = cli_run("generate", "--base", "tiny-gpt2", "Hi")
    assert result.exit_code == 2 and "tiny-gpt2-v1: file model.safetensors does not match" in result.stderr


@pytest.mark.slow
def test_adapter_keys_that_do_not_fit_are_an_error(cli_run, embedded_base, registry, tmp_path):
    from safetensors.torch import load_file, save_file

    data = tmp_path / "d.json"
    data.write_text(json.dumps(PAIRS))
    assert cli_run("train", "--strategy", "lora8bit", "--dataset", data, "--name", "support", *QUICK).exit_code == 0
    good = registry.resolve("support")
    weights = load_file(str(good.path / "adapter_model.safetensors"))
    dropped = sorted(weights)[0]
    del weights[dropped]
    broken = tmp_path / "adapter_model.safetensors"
    save_file(weights, str(broken))
    files = {"adapter_model.safetensors": broken.read_bytes(), "adapter_config.json": (good.path / "adapter_config.json").read_bytes()}
    publish_files(registry, "broken", files, base=good.base, base_fingerprint=good.manifest["base_fingerprint"])
    result = cli_run("generate", "--adapter", "broken", "Hi")
    assert result.exit_code == 2 and f"broken-v1: adapter weights do not fit the model: missing {dropped}" in result.stderr


def test_alias_history_and_removal(cli_run, registry):
    for _ in range(2):
        publish_files(registry, "support")
    assert cli_run("tag", "support-v1", "prod").exit_code == 0
    assert cli_run("tag", "support-v2", "prod").exit_code == 0
    assert cli_run("tag", "--rm", "support@prod").stdout.strip() == "Removed support@prod (was support-v2)"
    moves = json.loads(cli_run("history", "support@prod", "--json").stdout)
    assert [m["version"] for m in moves] == [1, 2, None] and all(m["moved_by"] and m["moved_at"] for m in moves)
    assert cli_run("show", "support@prod").exit_code == 2
    assert cli_run("history", "support@never").exit_code == 2


def test_diff_shows_settings_metrics_and_lineage(cli_run, registry):
    publish_files(registry, "s", config={"learning_rate": 0.001, "epochs": 1}, metrics={"eval_loss": 2.0}, base="tiny-gpt2-v1")
    publish_files(registry, "s", config={"learning_rate": 0.002, "epochs": 1}, metrics={"eval_loss": 1.5}, base="tiny-gpt2-v1", parent="s-v1")
    differences = json.loads(cli_run("diff", "s-v1", "s-v2", "--json").stdout)
    assert differences == [
        {"key": "parent", "s-v1": None, "s-v2": "s-v1"},
        {"key": "config.learning_rate", "s-v1": 0.001, "s-v2": 0.002},
        {"key": "metrics.eval_loss", "s-v1": 2.0, "s-v2": 1.5},
    ]
    assert "same lineage, settings and metrics" in cli_run("diff", "s-v1", "s-v1").stdout


@pytest.mark.slow
def test_model_card_parses_and_lineage_is_shown(cli_run, embedded_base, registry, tmp_path):
    from huggingface_hub import ModelCard

    data = tmp_path / "d.json"
    data.write_text(json.dumps(PAIRS))
    assert cli_run("train", "--strategy", "scratch", "--dataset", data, "--name", "card", *QUICK).exit_code == 0
    assert cli_run("train", "--from", "card", "--max-steps", "1").exit_code == 0
    entry = registry.resolve("card-v2")
    card = ModelCard.load(entry.path / "README.md")
    # The Hub's base_model must be a Hub id: a base that is only in this registry is named in the text instead.
    assert card.data.base_model is None and "on `tiny-gpt2-v1`" in card.text and card.data.library_name == "transformers"
    assert "scratch" in card.data.tags and card.data.datasets == [entry.manifest["dataset"]["fingerprint"]]
    assert "eval_loss" in card.data.metrics and "![loss curve](loss.png)" in card.text and "AutoModelForCausalLM" in card.text
    lineage = json.loads(cli_run("show", "card-v2", "--json").stdout)["lineage"]
    assert lineage == ["card-v2 [scratch] (from card-v1)", "tiny-gpt2-v1 [embedded-base]"]
    assert "lineage:   card-v2 [scratch] (from card-v1) <- tiny-gpt2-v1 [embedded-base]" in cli_run("show", "card-v2").stdout
