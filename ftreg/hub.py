"""Sharing versions through the Hugging Face Hub: push one version as one tagged commit, pull one back.

Only safetensors, JSON and text travel. A pulled repository holding pickle-format files
(*.bin, *.pt, *.pth, *.pkl, *.ckpt) is refused unless the user trusts it explicitly, and even
then ftreg itself never unpickles anything. The token comes from HF_TOKEN or the huggingface_hub
login; it is never printed and never stored in the registry.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ftreg.errors import ArtifactError, FtregError
from ftreg.registry import Entry, Registry, validate_name
from ftreg.registry.files import sha256_file
from ftreg.registry.store import MANIFEST

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
SAFE_PATTERNS = ["*.safetensors", "*.json", "*.txt", "*.md", "*.png", "*.model"]
# What a pulled version may keep from the pushed manifest: what it is and how it was made.
CARRIED = ("kind", "base", "base_fingerprint", "base_source", "strategy", "dataset", "config", "metrics", "prompt_template", "plugin_versions")


def push(entry: Entry, repo_id: str, private: bool = False) -> str:
    """Upload the version's files (manifest and model card included) in one commit tagged vN; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    with _hub_errors(repo_id):
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=entry.path, commit_message=f"ftreg: {entry.ref}")
        api.create_tag(repo_id, tag=f"v{entry.version}", revision=commit.oid, exist_ok=True)
    return commit.commit_url


def pull(registry: Registry, spec: str, name: str, trust_pickle: bool = False, notify=lambda message: None) -> Entry:
    """Download ``OWNER/NAME[@REVISION]``, check it, and publish it as the next version of ``name``."""
    from huggingface_hub import HfApi, snapshot_download

    validate_name(name)  # before any download
    repo_id, _, revision = spec.partition("@")
    with _hub_errors(repo_id):
        info = HfApi().model_info(repo_id, revision=revision or None)
    files = [sibling.rfilename for sibling in info.siblings]
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickles and not trust_pickle:
        raise FtregError(f"{repo_id}@{info.sha[:12]} holds pickle files ({', '.join(pickles)}), which can run code when loaded; pass --trust-pickle to download them anyway")
    patterns = SAFE_PATTERNS + ([f"*{suffix}" for suffix in PICKLE_SUFFIXES] if trust_pickle else [])
    with tempfile.TemporaryDirectory(prefix="ftreg-pull-") as cache, _hub_errors(repo_id):
        # Pinned to the commit model_info saw, so a push in between cannot mix two commits.
        snapshot = Path(snapshot_download(repo_id, revision=info.sha, allow_patterns=patterns, cache_dir=cache))
        with registry.staging() as stage:
            for file in snapshot.rglob("*"):
                if file.is_file() and file.name != MANIFEST:
                    (stage / file.relative_to(snapshot)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(file, stage / file.relative_to(snapshot))
            pushed = _read_manifest(snapshot)
            _check_against(pushed, stage, repo_id)
            fields = {key: pushed[key] for key in CARRIED if key in pushed}
            fields.setdefault("kind", "adapter" if (stage / "adapter_config.json").is_file() else "checkpoint")
            if pickles:
                notify(f"warning: kept pickle files from {repo_id} as --trust-pickle asked: {', '.join(pickles)}")
            return registry.publish(stage, name=name, hub={"repo_id": repo_id, "revision": revision or "main", "commit": info.sha}, **fields)


def _read_manifest(snapshot: Path) -> dict:
    import json

    path = snapshot / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def _check_against(manifest: dict, stage: Path, repo_id: str) -> None:
    """Files pushed by ftreg carry their sha256 in the manifest: what arrived must match it."""
    for rel, recorded in manifest.get("files", {}).items():
        path = stage / rel
        if not path.is_file():
            if not rel.endswith(PICKLE_SUFFIXES):  # pickles are skipped on purpose unless trusted
                raise ArtifactError(f"{repo_id}: {rel} is in the pushed manifest but not in the repository")
        elif sha256_file(path) != recorded["sha256"]:
            raise ArtifactError(f"{repo_id}: {rel} does not match the sha256 its manifest records")


class _hub_errors:
    """Turns the Hub's answers into one-line user errors; the token never appears in them."""

    def __init__(self, repo_id: str):
        self.repo_id = repo_id

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or isinstance(error, FtregError):
            return False
        from huggingface_hub.errors import HFValidationError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

        if isinstance(error, HFValidationError):
            raise FtregError(f"{self.repo_id!r} is not a valid Hub repository id (OWNER/NAME)") from error
        if isinstance(error, RepositoryNotFoundError):
            raise FtregError(f"{self.repo_id}: no such repository on the Hub (or no access to it)") from error
        if isinstance(error, RevisionNotFoundError):
            raise FtregError(f"{self.repo_id}: no such revision") from error
        if isinstance(error, HfHubHTTPError):
            status = error.response.status_code if error.response is not None else "?"
            hint = "; check HF_TOKEN or `hf auth login`" if status in (401, 403) else ""
            raise FtregError(f"{self.repo_id}: the Hub answered HTTP {status}{hint}") from error
        if isinstance(error, OSError) or type(error).__module__.startswith(("httpx", "requests", "urllib3")):
            raise FtregError(f"{self.repo_id}: the transfer failed ({type(error).__name__}); nothing was registered") from error
        return False
