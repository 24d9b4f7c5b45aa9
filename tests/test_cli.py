import json

from conftest import publish_files
from ftreg.registry import Registry


def test_list_table_and_json(cli_run, registry):
    publish_files(registry, "support", base="tiny-gpt2-v1", strategy="lora8bit", metrics={"eval_loss": 1.25, "train_loss": 2.0})
    publish_files(registry, "support", base="tiny-gpt2-v1", strategy="lora8bit", metrics={"train_loss": 0.5})
    registry.tag("support-v1", "prod")
    settings = {"format": "instruction", "limit": None, "max_new_tokens": 64}
    registry.record_evaluation(registry.resolve("support-v1"), "qa.json", "sha256:1", settings, {"loss": 1.2, "perplexity": 3.32, "rouge_l": 0.25}, [])
    result = cli_run("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["REF", "KIND", "BASE", "STRATEGY", "METRIC", "EVALUATED", "(NEWEST)", "CREATED", "(UTC)"]
    assert lines[2].split()[:9] == ["support-v1", "@prod", "adapter", "tiny-gpt2-v1", "lora8bit", "eval_loss=1.25", "perplexity=3.32", "rouge_l=0.25", "on"]
    assert lines[3].split()[:5] == ["support-v2", "adapter", "tiny-gpt2-v1", "lora8bit", "train_loss=0.5"]

    data = json.loads(cli_run("list", "--json").stdout)
    assert [item["ref"] for item in data] == ["support-v1", "support-v2"]
    assert data[0]["aliases"] == ["prod"] and data[0]["metrics"] == {"eval_loss": 1.25, "train_loss": 2.0}
    assert {"ref", "name", "version", "kind", "base", "strategy", "created_at", "files", "path", "config", "dataset"} <= set(data[0])


def test_list_of_one_name_and_empty_registry(cli_run, registry):
    result = cli_run("list")
    assert result.exit_code == 0 and result.stdout == "" and "No versions" in result.stderr
    publish_files(registry, "a")
    publish_files(registry, "b")
    assert [i["ref"] for i in json.loads(cli_run("list", "b", "--json").stdout)] == ["b-v1"]


def test_show(cli_run, registry):
    entry = publish_files(registry, "support", base="tiny-gpt2-v1", strategy="lora8bit", metrics={"eval_loss": 1.25})
    result = cli_run("show", "support")
    assert result.exit_code == 0
    assert "support-v1" in result.stdout and "lora8bit" in result.stdout and "eval_loss=1.25" in result.stdout
    assert "adapter_model.safetensors" in result.stdout
    data = json.loads(cli_run("show", "support-v1", "--json").stdout)
    assert data["ref"] == "support-v1" and data["path"] == str(entry.path) and data["files"] == entry.manifest["files"]


def test_tag_and_rm(cli_run, registry):
    publish_files(registry, "support")
    assert cli_run("tag", "support-v1", "prod").stdout.strip() == "support@prod -> support-v1"
    refused = cli_run("rm", "support-v1")
    assert refused.exit_code == 2
    assert refused.stderr.strip().splitlines() == ["Error: support-v1 is pointed at by support@prod; move the alias first or pass --force"]
    assert cli_run("rm", "support-v1", "--force").stdout.strip() == "Removed support-v1"
    assert json.loads(cli_run("list", "--json").stdout) == []


def test_user_errors_are_one_line_with_exit_code_2(cli_run, registry):
    publish_files(registry, "support")
    for args in (["show", "nope"], ["show", "support-v9"], ["show", "../etc"], ["show", "Support"], ["tag", "support", "Bad Alias"], ["rm", "support@prod"], ["list", "UPPER"]):
        result = cli_run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_registry_option_overrides_home(cli_run, tmp_path, registry):
    other = tmp_path / "elsewhere"
    publish_files(registry, "here")
    publish_files(Registry(other), "there")
    assert [i["ref"] for i in json.loads(cli_run("--registry", other, "list", "--json").stdout)] == ["there-v1"]
    assert [i["ref"] for i in json.loads(cli_run("list", "--json").stdout)] == ["here-v1"]
