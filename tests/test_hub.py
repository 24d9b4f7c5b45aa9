"""ftreg push / pull against a real HTTP Hub on 127.0.0.1, with the real huggingface_hub client."""

import json
import pickle

import pytest
from huggingface_hub import HfApi, file_download

from conftest import SUPPORT_TRAIN as TRAIN
from hub_server import HUB_TOKEN

REPO = "alice/support-bot"
BASE_REPO = "alice/tiny-gpt2"


class NoSleep:
    """The client waits a second before retrying a broken download; tests need not."""

    @staticmethod
    def sleep(seconds):
        pass

    def __getattr__(self, name):
        import time

        return getattr(time, name)


@pytest.fixture
def trained(support_adapter):
    return support_adapter


def _greedy(cli_run, *args):
    result = cli_run(*args, "generate", "--adapter", "support" if not args else "pulled", "--greedy", "--max-new-tokens", "12", "--json", "Is shipping free?", "Where is my package?")
    assert result.exit_code == 0, result.output
    return [item["completion"] for item in json.loads(result.stdout)]


@pytest.mark.slow
def test_push_pull_round_trip_generates_the_same(hub, cli_run, trained, registry, tmp_path):
    pushed = cli_run("push", "support-v1", "--repo", REPO, "--base-repo", BASE_REPO)
    assert pushed.exit_code == 0, pushed.output
    assert pushed.stdout.strip().startswith(hub.url) and HUB_TOKEN not in pushed.output
    refs = hub.refs(REPO)
    assert "v1" in refs["tags"]
    remote = hub.repo_files(REPO, "v1")
    entry = registry.resolve("support-v1")
    assert set(entry.manifest["files"]) | {"manifest.json"} <= set(remote)
    assert remote["README.md"].startswith(b"---\n")  # the model card travels in the same commit

    fresh = tmp_path / "fresh-home"
    pulled = cli_run("--registry", fresh, "pull", REPO, "--name", "pulled")
    assert pulled.exit_code == 0, pulled.output
    assert pulled.stdout.strip() == "pulled-v1"
    shown = json.loads(cli_run("--registry", fresh, "show", "pulled", "--json").stdout)
    assert shown["hub"] == {"repo_id": REPO, "revision": "main", "commit": refs["tags"]["v1"]}
    assert shown["base"] == "tiny-gpt2-v1" and shown["base_fingerprint"] == entry.manifest["base_fingerprint"]
    assert any("pulled from alice/support-bot" in step for step in shown["lineage"])
    assert _greedy(cli_run, "--registry", fresh) == _greedy(cli_run)


@pytest.mark.slow
def test_pull_a_tagged_older_revision(hub, cli_run, trained, registry):
    assert cli_run("push", "support-v1", "--repo", REPO, "--base-repo", BASE_REPO).exit_code == 0
    assert cli_run("train", "--dataset", trained, "--name", "support", *TRAIN, "--seed", "3").exit_code == 0
    assert cli_run("push", "support-v2", "--repo", REPO, "--base-repo", BASE_REPO).exit_code == 0
    assert set(hub.refs(REPO)["tags"]) == {"v1", "v2"}
    assert cli_run("pull", f"{REPO}@v1", "--name", "old").exit_code == 0
    old, first = registry.resolve("old"), registry.resolve("support-v1")
    assert old.manifest["files"]["adapter_model.safetensors"] == first.manifest["files"]["adapter_model.safetensors"]
    assert old.manifest["hub"]["revision"] == "v1"


def test_bad_token_is_401_and_never_printed(hub, cli_run, registry, monkeypatch):
    from conftest import publish_files

    publish_files(registry, "support")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_value")
    result = cli_run("push", "support-v1", "--repo", REPO)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {REPO}: the Hub answered HTTP 401; check HF_TOKEN or `hf auth login`"
    assert "hf_wrong_token_value" not in result.output


def test_pulling_a_missing_repo(hub, cli_run, registry):
    result = cli_run("pull", "alice/nothing-here", "--name", "x")
    assert result.exit_code == 2 and "alice/nothing-here: no such repository" in result.stderr
    assert registry.entries() == []


MARKER_PAYLOAD = """
import pickle, pathlib
class Plant:
    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path({marker!r}),))
"""


def _plant_pickle_repo(tmp_path):
    marker = tmp_path / "pickle-ran"
    namespace = {}
    exec(MARKER_PAYLOAD.format(marker=str(marker)), namespace)
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(namespace["Plant"]()))
    (folder / "training_args.bin").write_bytes(pickle.dumps(namespace["Plant"]()))
    HfApi().create_repo("mallory/evil", exist_ok=True)
    HfApi().upload_folder(repo_id="mallory/evil", folder_path=folder)
    return marker


def test_pickles_are_refused_and_never_unpickled(hub, cli_run, registry, tmp_path):
    marker = _plant_pickle_repo(tmp_path)
    refused = cli_run("pull", "mallory/evil", "--name", "evil")
    assert refused.exit_code == 2
    assert "holds pickle files (pytorch_model.bin, training_args.bin)" in refused.stderr and "--trust-pickle" in refused.stderr
    assert registry.entries() == [] and not marker.exists()
    trusted = cli_run("pull", "mallory/evil", "--name", "evil", "--trust-pickle")
    # Trusted weights are read as tensors only (weights_only=True): a pickle that runs code is refused, not run.
    assert trusted.exit_code == 2 and "pytorch_model.bin holds more than tensors, so it was not loaded" in trusted.stderr
    assert registry.entries() == [] and not marker.exists()


def test_trusted_pickled_weights_become_safetensors(hub, cli_run, embedded_base, registry, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "legacy"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(embedded_base.path / name, folder / name)
    torch.save(load_file(str(embedded_base.path / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "optimizer.pt").write_bytes(b"not needed")
    HfApi().create_repo("old/legacy")
    HfApi().upload_folder(repo_id="old/legacy", folder_path=folder)
    pulled = cli_run("pull", "old/legacy", "--name", "legacy", "--trust-pickle")
    assert pulled.exit_code == 0, pulled.output
    assert "converted pickled weights to safetensors" in pulled.stderr and "pytorch_model.bin -> model.safetensors" in pulled.stderr
    assert "not kept: optimizer.pt" in pulled.stderr
    files = set(registry.resolve("legacy").manifest["files"])
    assert "model.safetensors" in files and not any(name.endswith((".bin", ".pt")) for name in files)
    args = ("--greedy", "--max-new-tokens", "6", "--raw", "Hello there")
    assert cli_run("generate", "--base", "legacy", *args).stdout == cli_run("generate", "--base", "tiny-gpt2", *args).stdout


@pytest.mark.slow
def test_interrupted_download_registers_nothing(hub, cli_run, trained, registry, monkeypatch):
    assert cli_run("push", "support-v1", "--repo", REPO, "--base-repo", BASE_REPO).exit_code == 0
    monkeypatch.setattr(file_download, "time", NoSleep())
    hub.fail_next_download(after_bytes=10, times=100, filename="adapter_model.safetensors")
    result = cli_run("pull", REPO, "--name", "cut")
    assert result.exit_code == 2 and "the transfer failed" in result.stderr and "nothing was registered" in result.stderr
    assert not registry.exists("cut") and list(registry.tmp.iterdir()) == []
    hub.clear_failures()
    assert cli_run("pull", REPO, "--name", "cut").exit_code == 0  # and a later try works


def test_bad_repo_ids_and_names_fail_before_any_download(hub, cli_run, registry):
    for args, message in ((["pull", "bad!!repo", "--name", "x"], "'bad!!repo' is not a valid Hub repository id"),
                          (["pull", REPO, "--name", "Bad Name"], "invalid name 'Bad Name'")):
        result = cli_run(*args)
        assert result.exit_code == 2 and message in result.stderr, result.output
    assert not [r for r in hub.requests if "/resolve/" in r.path]


@pytest.mark.slow
def test_a_file_missing_from_the_repo_is_refused(hub, cli_run, trained, registry):
    assert cli_run("push", "support-v1", "--repo", REPO, "--base-repo", BASE_REPO).exit_code == 0
    HfApi().delete_file("training_args.json", repo_id=REPO)
    result = cli_run("pull", REPO, "--name", "partial")
    assert result.exit_code == 2 and "training_args.json is in the pushed manifest but not in the repository" in result.stderr
    assert not registry.exists("partial")
