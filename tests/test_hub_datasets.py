"""A Hub dataset id as a --dataset: read from the fake Hub on 127.0.0.1 with the real client, cached, pinned to its commit."""

import json

import pytest
from huggingface_hub import HfApi, constants
from test_data_sources import ALPACA

from ftreg.datasets.loading import load_dataset

REPO = "alice/support-pairs"
TEST = ALPACA[:2]


@pytest.fixture
def dataset_repo(hub, tmp_path):
    """A dataset repository shaped as the Hub's Parquet conversion names it: a train and a test split, and a card."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "upload"
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(ALPACA), folder / "data" / "train-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(TEST), folder / "data" / "test-00000-of-00001.parquet")
    (folder / "README.md").write_text("# support pairs\n")
    (folder / "logo.png").write_bytes(b"\x89PNG not data")
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    return api.upload_folder(repo_id=REPO, repo_type="dataset", folder_path=folder).oid


def _local(records, tmp_path, name):
    path = tmp_path / name
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return load_dataset(str(path), "alpaca").examples


def _check(cli_run, *args):
    result = cli_run("data", "check", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_hub_id_reads_its_train_split_and_a_named_split(dataset_repo, cli_run, embedded_base, tmp_path):
    train = _check(cli_run, REPO)
    assert (train["source"], train["format"], train["examples"]) == (REPO, "alpaca", len(ALPACA))
    assert _check(cli_run, f"{REPO}:test")["examples"] == len(TEST)

    for text, records in ((REPO, ALPACA), (f"{REPO}:test", TEST), (f"hf://datasets/{REPO}@main:test", TEST)):
        loaded = load_dataset(text)
        assert [e.segments for e in loaded.examples] == [e.segments for e in _local(records, tmp_path, "local.jsonl")]
        assert loaded.fingerprint == f"hub:{REPO}@{dataset_repo}:" + ("test" if text.endswith(":test") else "train")
        assert loaded.reference == f"{REPO}@{dataset_repo}" + (":test" if text.endswith(":test") else "")
    # Only data files were fetched: not the card, not the image.
    snapshot = load_dataset(REPO).path
    assert sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()) == [
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
    ]


def test_a_second_read_is_served_from_the_cache_offline(dataset_repo, hub, monkeypatch):
    first = load_dataset(REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.stop()  # nothing to reach any more
    for text in (REPO, f"{REPO}@{dataset_repo}", first.reference):
        again = load_dataset(text)
        assert again.fingerprint == first.fingerprint and [e.segments for e in again.examples] == [e.segments for e in first.examples]


def test_a_new_commit_is_a_new_fingerprint_and_a_pinned_reference_keeps_the_old_one(dataset_repo, hub, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    old = load_dataset(REPO)
    pq.write_table(pa.Table.from_pylist(ALPACA[:3]), tmp_path / "train.parquet")
    commit = HfApi().upload_file(path_or_fileobj=tmp_path / "train.parquet", path_in_repo="data/train-00000-of-00001.parquet", repo_id=REPO, repo_type="dataset").oid
    new = load_dataset(REPO)
    assert (new.fingerprint, len(new.examples)) == (f"hub:{REPO}@{commit}:train", 3)
    pinned = load_dataset(old.reference)
    assert (pinned.fingerprint, len(pinned.examples)) == (old.fingerprint, len(ALPACA))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("alice/nothing-here", "alice/nothing-here: no such dataset on the Hub (or no access to it), and no such local file or directory"),
        (f"{REPO}@no-such-branch", f"{REPO}@no-such-branch: dataset {REPO} has no revision 'no-such-branch'"),
        (f"{REPO}:validation", f"{REPO}@"),  # ...the commit: no split 'validation'; the directory has 'train', 'test' (any order)
    ],
)
def test_unknown_repo_revision_and_split_are_one_line(dataset_repo, cli_run, embedded_base, text, expected):
    result = cli_run("data", "check", text)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {expected}") and result.stderr.count("\n") == 1, result.stderr
    if text.endswith(":validation"):
        assert f"{REPO}@{dataset_repo[:12]}: no split 'validation'" in result.stderr


def test_a_bad_token_is_one_line_and_never_printed(dataset_repo, cli_run, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_value")
    result = cli_run("data", "check", REPO)
    assert result.exit_code == 2 and result.stderr == f"Error: {REPO}: the Hub answered HTTP 401; check HF_TOKEN or `hf auth login`\n"
    assert "hf_wrong_token_value" not in result.output


def test_a_missing_data_file_is_still_no_such_file(hub, cli_run):
    result = cli_run("data", "check", "data/train.jsonl")
    assert result.exit_code == 2 and result.stderr == "Error: data/train.jsonl: no such file\n"
    assert not hub.requests


def test_offline_and_not_cached_is_one_line(dataset_repo, cli_run, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    result = cli_run("data", "check", REPO)
    assert result.exit_code == 2 and result.stderr == f"Error: {REPO}: not in the local Hub cache, and the Hub cannot be reached (offline?), and no such local file or directory\n"


@pytest.mark.slow
def test_training_records_the_commit_and_from_fetches_it_again(dataset_repo, cli_run, embedded_base, registry):
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", REPO, "--max-steps", "1", "--eval-split", "0", "--name", "x")
    assert result.exit_code == 0, result.output
    manifest = registry.resolve("x-v1").manifest
    assert manifest["config"]["dataset"] == f"{REPO}@{dataset_repo}"
    assert manifest["dataset"]["fingerprint"] == f"hub:{REPO}@{dataset_repo}:train"
    assert HfApi().dataset_info(REPO).sha == dataset_repo
    again = cli_run("train", "--from", "x-v1", "--name", "x")
    assert again.exit_code == 0, again.output
    assert registry.resolve("x-v2").manifest["dataset"]["fingerprint"] == f"hub:{REPO}@{dataset_repo}:train"
