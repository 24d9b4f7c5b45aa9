"""Config files, --print-config, and re-running a version's settings with --from."""

import json

import pytest

from conftest import publish_files


def test_print_config_merges_file_and_flags(cli_run, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('strategy = "lora8bit"\ndataset = "builtin:support"\nname = "support"\nlearning_rate = 0.001\nepochs = 2.0\n[columns]\nresponse = "answer"\n')
    result = cli_run("train", "--config", config, "--epochs", "3", "--print-config")
    assert result.exit_code == 0, result.output
    assert 'learning_rate = 0.001\n' in result.stdout and "epochs = 3.0\n" in result.stdout
    assert '[columns]\nresponse = "answer"' in result.stdout
    # What --print-config prints is itself a config file that gives the same settings.
    again = tmp_path / "again.toml"
    again.write_text(result.stdout)
    assert cli_run("train", "--config", again, "--print-config").stdout == result.stdout


def test_yaml_config(cli_run, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("strategy: scratch\ndataset: data.json\nname: y\nscratch:\n  patience: 3\n")
    assert "[scratch]\npatience = 3\n" in cli_run("train", "--config", config, "--print-config").stdout


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.toml", 'strategy = "lora8bit"\nlearning_rat = 0.1\n', r"bad\.toml: unknown setting 'learning_rat' \(did you mean 'learning_rate'\?\)"),
        ("bad.toml", "strategy = \n", r"bad\.toml: not valid TOML"),
        ("bad.yaml", "- a list\n", r"bad\.yaml: expected a table of settings, got list"),
        ("bad.json", "{}", r"bad\.json: use a \.toml, \.yaml or \.yml file"),
    ],
)
def test_bad_config_files(cli_run, tmp_path, name, content, message):
    import re

    path = tmp_path / name
    path.write_text(content)
    result = cli_run("train", "--config", path, "--print-config")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert re.search(message, result.stderr), result.stderr


def test_flags_validate_like_the_file(cli_run, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('strategy = "lora8bit"\ndataset = "d.json"\nname = "s"\nbatch_size = 0\n')
    result = cli_run("train", "--config", config, "--print-config")
    assert result.exit_code == 2 and "batch_size must be >= 1, got 0" in result.stderr


def test_from_reuses_a_versions_settings(cli_run, registry):
    publish_files(registry, "support", kind="adapter", config={"strategy": "lora8bit", "dataset": "builtin:support", "name": "support", "learning_rate": 0.003, "lora_r": 16})
    result = cli_run("train", "--from", "support-v1", "--dataset", "other.json", "--print-config")
    assert result.exit_code == 0, result.output
    assert 'dataset = "other.json"' in result.stdout and "learning_rate = 0.003" in result.stdout and "[lora8bit]\nr = 16\n" in result.stdout  # an old record's lora_r, upgraded
    assert 'name = "support"' in result.stdout


@pytest.mark.slow
def test_retrain_records_the_parent(cli_run, embedded_base, registry, tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"instruction": f"q{i}", "response": f"answer number {i}"} for i in range(6)]))
    first = cli_run("train", "--strategy", "lora8bit", "--dataset", data, "--name", "support", "--max-steps", "1")
    assert first.exit_code == 0, first.output
    second = cli_run("train", "--from", "support-v1", "--max-steps", "2")
    assert second.exit_code == 0, second.output
    entry = registry.resolve("support")
    assert entry.ref == "support-v2" and entry.manifest["parent"] == "support-v1"
    assert entry.config["max_steps"] == 2 and entry.config["dataset"] == str(data)
