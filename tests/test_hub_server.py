"""The FakeHub (tests/hub_server.py) driven by the real huggingface_hub client."""

import json
import time
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, constants, file_download, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hub_server import FakeHub, configure_client

REPO = "alice/tiny-adapter"
PATTERNS = ["*.safetensors", "*.json", "README.md"]


def adapter_files(version: int) -> dict[str, bytes]:
    return {
        "adapter_model.safetensors": bytes(range(256)) * 8 + f"weights v{version}".encode(),
        "adapter_config.json": json.dumps({"r": 8 * version, "base_model_name_or_path": "gpt2"}).encode(),
        "README.md": f"---\nlicense: mit\n---\n# tiny adapter v{version}\n".encode(),
    }


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def read_snapshot(path: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(path).iterdir() if p.is_file()}


class NoSleep:
    """Stands in for the `time` module in huggingface_hub.file_download: retries without waiting."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        pass


@pytest.fixture
def published(hub, tmp_path):
    """REPO with two commits: v1 (tagged "v1") then v2 on main."""
    api = HfApi()
    url = api.create_repo(REPO, repo_type="model", private=False, exist_ok=True)
    assert url.repo_id == REPO and url.startswith(hub.url)
    first = api.upload_folder(repo_id=REPO, folder_path=write_folder(tmp_path / "v1", adapter_files(1)),
                              commit_message="v1")
    api.create_tag(REPO, tag="v1", revision=first.oid)
    second = api.upload_folder(repo_id=REPO, folder_path=write_folder(tmp_path / "v2", adapter_files(2)),
                               commit_message="v2")
    return first.oid, second.oid


def test_upload_tag_and_download_each_revision(hub, published, tmp_path):
    first, second = published
    assert len(first) == len(second) == 40 and first != second
    assert hub.refs(REPO) == {"branches": {"main": second}, "tags": {"v1": first}}
    cache = tmp_path / "cache"

    v1 = snapshot_download(REPO, revision="v1", allow_patterns=PATTERNS, cache_dir=cache)
    assert Path(v1).name == first
    assert read_snapshot(v1) == adapter_files(1)
    main = snapshot_download(REPO, revision="main", allow_patterns=PATTERNS, cache_dir=cache)
    assert Path(main).name == second
    assert read_snapshot(main) == adapter_files(2)
    by_sha = snapshot_download(REPO, revision=first, allow_patterns=["*.json"], cache_dir=tmp_path / "other")
    assert read_snapshot(by_sha) == {"adapter_config.json": adapter_files(1)["adapter_config.json"]}

    config = hf_hub_download(REPO, "adapter_config.json", revision="v1", cache_dir=cache)
    assert json.loads(Path(config).read_text())["r"] == 8


def test_repo_info_files_and_refs(hub, published):
    first, second = published
    api = HfApi()
    assert api.model_info(REPO).sha == second
    assert api.model_info(REPO, revision="v1").sha == first
    assert api.repo_info(REPO, revision=first).sha == first
    info = api.model_info(REPO, revision="main", files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes["adapter_model.safetensors"] == len(adapter_files(2)["adapter_model.safetensors"])
    assert info.private is False
    expected = [".gitattributes", "README.md", "adapter_config.json", "adapter_model.safetensors"]
    assert sorted(api.list_repo_files(REPO, revision="v1")) == expected
    refs = api.list_repo_refs(REPO)
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", first)]
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", second)]


def test_unchanged_upload_makes_no_commit(hub, published, tmp_path):
    _, second = published
    again = HfApi().upload_folder(repo_id=REPO, folder_path=tmp_path / "v2")
    assert again.oid == second
    assert hub.refs(REPO)["branches"]["main"] == second


def test_files_in_subfolders_and_deletions(hub, tmp_path):
    api = HfApi()
    api.create_repo(REPO)
    folder = write_folder(tmp_path / "run", {"a.txt": b"a"})
    write_folder(folder / "ckpt", {"b.bin": b"b" * 10})
    api.upload_folder(repo_id=REPO, folder_path=folder)
    assert sorted(api.list_repo_files(REPO)) == [".gitattributes", "a.txt", "ckpt/b.bin"]
    api.delete_file("a.txt", REPO)
    assert sorted(hub.repo_files(REPO)) == [".gitattributes", "ckpt/b.bin"]
    path = hf_hub_download(REPO, "ckpt/b.bin", cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == b"b" * 10


def test_bad_or_missing_token_is_rejected_on_writes(hub, published, tmp_path):
    _, second = published
    for token in ("hf_wrong", False):
        with pytest.raises(HfHubHTTPError) as error:
            HfApi(token=token).create_repo("alice/other")
        assert error.value.response.status_code == 401
        assert not isinstance(error.value, RepositoryNotFoundError)
    with pytest.raises(HfHubHTTPError) as error:
        HfApi(token="hf_wrong").create_repo(REPO, exist_ok=True)
    assert error.value.response.status_code == 401
    assert "Invalid credentials" in str(error.value)

    folder = write_folder(tmp_path / "v3", adapter_files(3))
    for token in ("hf_wrong", False):
        with pytest.raises(HfHubHTTPError) as error:
            HfApi(token=token).upload_folder(repo_id=REPO, folder_path=folder)
        assert error.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as error:
        HfApi(token=False).create_tag(REPO, tag="v2", revision=second)
    assert error.value.response.status_code == 401
    assert hub.refs(REPO) == {"branches": {"main": second}, "tags": {"v1": published[0]}}


def test_missing_repo_revision_and_file(hub, published, tmp_path):
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError) as error:
        api.model_info("alice/missing")
    assert error.value.response.status_code == 404
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("alice/missing", cache_dir=tmp_path / "cache")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/missing", "config.json", cache_dir=tmp_path / "cache")
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(REPO, revision="v9", cache_dir=tmp_path / "cache")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "nope.json", cache_dir=tmp_path / "cache")


def test_private_repo_needs_a_token(hub, tmp_path):
    api = HfApi()
    api.create_repo("alice/secret", private=True)
    api.upload_folder(repo_id="alice/secret", folder_path=write_folder(tmp_path / "s", {"w.bin": b"secret"}))
    assert api.model_info("alice/secret").private is True
    with pytest.raises(RepositoryNotFoundError) as error:
        HfApi(token=False).model_info("alice/secret")
    assert error.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/secret", "w.bin", token=False, cache_dir=tmp_path / "anon")
    path = hf_hub_download("alice/secret", "w.bin", cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == b"secret"


def test_interrupted_download_restarts_and_completes(hub, published, tmp_path, monkeypatch):
    """A cut before the client's first 10 MiB chunk: the bytes are dropped and the GET restarts."""
    monkeypatch.setattr(file_download, "time", NoSleep())  # the client waits 1 s before retrying
    hub.fail_next_download(after_bytes=100, filename="adapter_model.safetensors")
    path = hf_hub_download(REPO, "adapter_model.safetensors", cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == adapter_files(2)["adapter_model.safetensors"]
    gets = [r for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]
    assert [r.headers.get("Range") for r in gets] == [None, None]


def test_interrupted_download_resumes_with_range(hub, published, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1000)  # client keeps whole chunks only
    monkeypatch.setattr(file_download, "time", NoSleep())
    hub.fail_next_download(after_bytes=1500, filename="adapter_model.safetensors")
    path = hf_hub_download(REPO, "adapter_model.safetensors", cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == adapter_files(2)["adapter_model.safetensors"]
    gets = [r for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]
    assert [r.headers.get("Range") for r in gets] == [None, "bytes=1000-"]


def test_download_that_keeps_failing_leaves_no_file(hub, published, tmp_path, monkeypatch):
    monkeypatch.setattr(file_download, "time", NoSleep())
    hub.fail_next_download(after_bytes=10, times=100, filename="adapter_model.safetensors")
    cache = tmp_path / "cache"
    # The client gives up after 5 retries without progress and lets the httpx error through.
    with pytest.raises(httpx2.RemoteProtocolError):
        snapshot_download(REPO, allow_patterns=["*.safetensors"], cache_dir=cache)
    repo_cache = cache / "models--alice--tiny-adapter"
    assert not any((repo_cache / "snapshots").rglob("adapter_model.safetensors"))
    assert list((repo_cache / "blobs").iterdir()) == []  # no partial or .incomplete blob left behind

    hub.clear_failures()
    path = snapshot_download(REPO, allow_patterns=["*.safetensors"], cache_dir=cache)
    assert read_snapshot(path) == {"adapter_model.safetensors": adapter_files(2)["adapter_model.safetensors"]}


def test_range_requests_and_head(hub, published):
    url = f"{hub.url}/{REPO}/resolve/v1/adapter_config.json"
    body = adapter_files(1)["adapter_config.json"]
    head = httpx2.head(url)
    assert head.status_code == 200 and head.headers["X-Repo-Commit"] == published[0]
    assert int(head.headers["Content-Length"]) == len(body) and head.headers["ETag"].startswith('"')
    part = httpx2.get(url, headers={"Range": "bytes=5-"})
    assert part.status_code == 206 and part.content == body[5:]
    assert part.headers["Content-Range"] == f"bytes 5-{len(body) - 1}/{len(body)}"
    assert httpx2.get(url, headers={"Range": f"bytes={len(body)}-"}).status_code == 416


def test_storage_survives_a_restart(hub, published, tmp_path, monkeypatch):
    first, _ = published
    hub.stop()
    with FakeHub(tmp_path / "fake-hub") as again:  # same root as the `hub` fixture's
        configure_client(monkeypatch, again, tmp_path / "hf-home")
        assert again.repo_files(REPO, "v1")["adapter_config.json"] == adapter_files(1)["adapter_config.json"]
        path = snapshot_download(REPO, revision="v1", allow_patterns=PATTERNS, cache_dir=tmp_path / "fresh")
        assert Path(path).name == first and read_snapshot(path) == adapter_files(1)
