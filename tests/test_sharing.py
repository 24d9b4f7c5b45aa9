"""What ftreg shares loads anywhere: a pushed adapter runs with plain transformers + peft and its card's own snippet."""

import json
import os
import re
import subprocess
import sys

import pytest

from hub_server import HUB_TOKEN

QUESTION = "Is shipping free?"
SNIPPET_RUNNER = """
import json, re, sys
card = open(sys.argv[1]).read()
exec(re.search(r"```python\\n(.*?)```", card, re.S).group(1))  # defines model and tokenizer, as a reader would
model.eval()
inputs = tokenizer(sys.argv[2], return_tensors="pt", add_special_tokens=False)
output = model.generate(**inputs, do_sample=False, max_new_tokens=12, repetition_penalty=1.1, pad_token_id=tokenizer.eos_token_id)
print(json.dumps(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()))
"""


def _ftreg_greedy(cli_run, *args):
    result = cli_run(*args, "--greedy", "--max-new-tokens", "12", QUESTION)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


@pytest.mark.slow
def test_a_pushed_adapter_loads_in_a_fresh_process_with_plain_libraries(support_adapter, hub, cli_run, registry, tmp_path):
    refused = cli_run("push", "support-v1", "--repo", "alice/support")
    assert refused.exit_code == 2
    assert "support-v1's base tiny-gpt2-v1 is only in this registry" in refused.stderr and "pass --base-repo OWNER/NAME" in refused.stderr
    pushed = cli_run("push", "support-v1", "--repo", "alice/support", "--base-repo", "alice/tiny-gpt2")
    assert pushed.exit_code == 0, pushed.output
    assert "pushed its base tiny-gpt2-v1 to alice/tiny-gpt2" in pushed.stderr

    remote = hub.repo_files("alice/support", "v1")
    adapter_config = json.loads(remote["adapter_config.json"])
    base_commit = hub.refs("alice/tiny-gpt2")["tags"]["v1"]
    assert (adapter_config["base_model_name_or_path"], adapter_config["revision"]) == ("alice/tiny-gpt2", base_commit)
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(remote)  # AutoTokenizer.from_pretrained(adapter repo) works
    card = remote["README.md"].decode()
    assert "base_model: alice/tiny-gpt2" in card and 'PeftModel.from_pretrained(base, "alice/support")' in card
    (tmp_path / "README.md").write_text(card)

    template = registry.resolve("support-v1").manifest["prompt_template"]
    env = {**os.environ, "HF_TOKEN": HUB_TOKEN, "HF_HUB_OFFLINE": "0", "PYTHONWARNINGS": "ignore"}
    plain = subprocess.run([sys.executable, "-c", SNIPPET_RUNNER, tmp_path / "README.md", template.replace("{prompt}", QUESTION)],
                           env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert json.loads(plain.stdout.strip().splitlines()[-1]) == _ftreg_greedy(cli_run, "generate", "--adapter", "support-v1")


@pytest.mark.slow
def test_push_merge_shares_a_standalone_model(support_adapter, hub, cli_run, registry, tmp_path):
    pushed = cli_run("push", "support-v1", "--repo", "alice/support-merged", "--merge")
    assert pushed.exit_code == 0, pushed.output
    remote = hub.repo_files("alice/support-merged", "v1")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(remote) and "adapter_config.json" not in remote
    manifest = json.loads(remote["manifest.json"])
    assert manifest["kind"] == "checkpoint" and manifest["merged_from"] == "support-v1"
    pulled = cli_run("--registry", tmp_path / "other", "pull", "alice/support-merged", "--name", "merged")
    assert pulled.exit_code == 0, pulled.output
    template = registry.resolve("support-v1").manifest["prompt_template"]
    assert _ftreg_greedy(cli_run, "--registry", tmp_path / "other", "generate", "--adapter", "merged-v1") == _ftreg_greedy(cli_run, "generate", "--adapter", "support-v1")
    assert re.search(r"from_pretrained\(\"alice/support-merged\"\)", remote["README.md"].decode())
    assert template  # the merged model keeps the adapter's prompt template in its record
    assert json.loads(cli_run("--registry", tmp_path / "other", "show", "merged-v1", "--json").stdout)["prompt_template"] == template


def test_pushing_an_older_version_leaves_main_at_the_newest(hub, cli_run, fake_strategies, embedded_base, registry, tmp_path):
    from conftest import write_json

    data = write_json(tmp_path / "d.json", [{"instruction": f"q{i}", "response": f"a{i}"} for i in range(4)])
    for loss in ("1.0", "2.0"):
        assert cli_run("train", "--strategy", "fake-checkpoint", "--dataset", data, "--name", "fc", "-o", f"loss={loss}").exit_code == 0
    assert cli_run("push", "fc-v2", "--repo", "alice/fc").exit_code == 0
    refs = hub.refs("alice/fc")
    assert refs["branches"]["main"] == refs["tags"]["v2"]
    assert cli_run("push", "fc-v1", "--repo", "alice/fc").exit_code == 0
    refs = hub.refs("alice/fc")
    assert refs["branches"]["main"] == refs["tags"]["v2"] and "v1" in refs["tags"]  # main stayed; v1 has its tag
    assert set(refs["branches"]) == {"main"}  # the side branch the older commit was made on is gone
    assert json.loads(hub.repo_files("alice/fc", "v1")["manifest.json"])["metrics"]["train_loss"] == 1.0
    assert json.loads(hub.repo_files("alice/fc", "main")["manifest.json"])["metrics"]["train_loss"] == 2.0
