"""Sharing versions through the Hugging Face Hub: push one version as one tagged commit, pull one back.

Only safetensors, JSON and text travel. A pulled repository holding pickle-format files
(*.bin, *.pt, *.pth, *.pkl, *.ckpt) is refused unless the user trusts it explicitly, and even
then ftreg itself never unpickles anything. The token comes from HF_TOKEN or the huggingface_hub
login; it is never printed and never stored in the registry.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftreg.contract.manifest import MANIFEST
from ftreg.errors import ArtifactError, FtregError
from ftreg.files import sha256_file
from ftreg.hub_errors import hub_errors
from ftreg.registry import Entry, Registry, validate_name

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
SAFE_PATTERNS = ["*.safetensors", "*.json", "*.txt", "*.md", "*.png", "*.model"]
# What a pulled version may keep from the pushed manifest: what it is and how it was made.
CARRIED = ("kind", "base", "base_fingerprint", "base_source", "strategy", "dataset", "config", "metrics", "prompt_template", "plugin_versions")


def push(registry: Registry, entry: Entry, repo_id: str, private: bool = False) -> str:
    """Upload the version's files (manifest and model card included) in one commit tagged vN; returns its URL.

    The files are checked against their recorded hashes first: a corrupted version is never shared.
    """
    from huggingface_hub import HfApi

    registry.verify_files(entry)

    api = HfApi()
    with hub_errors(repo_id):
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=entry.path, commit_message=f"ftreg: {entry.ref}")
        api.create_tag(repo_id, tag=f"v{entry.version}", revision=commit.oid, exist_ok=True)
    return commit.commit_url


def pull(registry: Registry, spec: str, name: str, trust_pickle: bool = False, notify: Callable[[str], None] = lambda message: None) -> Entry:
    """Download ``OWNER/NAME[@REVISION]``, check it, and publish it as the next version of ``name``."""
    from huggingface_hub import HfApi, snapshot_download

    validate_name(name)  # before any download
    repo_id, _, revision = spec.partition("@")
    with hub_errors(repo_id):
        info = HfApi().model_info(repo_id, revision=revision or None)
    files = [sibling.rfilename for sibling in info.siblings]
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickles and not trust_pickle:
        raise FtregError(f"{repo_id}@{info.sha[:12]} holds pickle files ({', '.join(pickles)}), which can run code when loaded; pass --trust-pickle to download them anyway")
    patterns = SAFE_PATTERNS + ([f"*{suffix}" for suffix in PICKLE_SUFFIXES] if trust_pickle else [])
    with tempfile.TemporaryDirectory(prefix="ftreg-pull-") as cache, hub_errors(repo_id):
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


def _read_manifest(snapshot: Path) -> dict[str, Any]:
    path = snapshot / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def _check_against(manifest: dict[str, Any], stage: Path, repo_id: str) -> None:
    """Files pushed by ftreg carry their sha256 in the manifest: what arrived must match it."""
    for rel, recorded in manifest.get("files", {}).items():
        path = stage / rel
        if not path.is_file():
            if not rel.endswith(PICKLE_SUFFIXES):  # pickles are skipped on purpose unless trusted
                raise ArtifactError(f"{repo_id}: {rel} is in the pushed manifest but not in the repository")
        elif sha256_file(path) != recorded["sha256"]:
            raise ArtifactError(f"{repo_id}: {rel} does not match the sha256 its manifest records")
