"""Sharing versions through the Hugging Face Hub: push one version as one tagged commit, pull one back.

Only safetensors, JSON and text travel. A pulled repository holding pickle-format files
(*.bin, *.pt, *.pth, *.pkl, *.ckpt) is refused unless the user trusts it explicitly; then its
weights (pytorch_model.bin, adapter_model.bin) are read with ``torch.load(weights_only=True)``,
which restores tensors and plain containers only, and converted to safetensors. No pickle is
kept in the registry. The token comes from HF_TOKEN or the huggingface_hub
login; it is never printed and never stored in the registry.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftreg.card import write_model_card
from ftreg.contract.manifest import MANIFEST, manifest_problems
from ftreg.errors import ArtifactError, FtregError
from ftreg.files import artifact_files, sha256_file
from ftreg.hub_errors import hub_errors
from ftreg.registry import Entry, Registry, validate_name

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# Pickled weights a trusted pull converts, and the safetensors file each becomes.
CONVERTED = {"pytorch_model.bin": "model.safetensors", "adapter_model.bin": "adapter_model.safetensors"}
SAFE_PATTERNS = ["*.safetensors", "*.json", "*.txt", "*.md", "*.png", "*.model"]
# What a pulled version may keep from the pushed manifest: what it is and how it was made.
CARRIED = ("kind", "base", "base_fingerprint", "base_source", "strategy", "dataset", "config", "metrics", "prompt_template", "system_prompt", "plugin_versions")


def push(
    registry: Registry, entry: Entry, repo_id: str, private: bool = False, base_repo: str | None = None, merge: bool = False, notify: Callable[[str], None] = lambda message: None
) -> str:
    """Upload a version as one commit tagged ``vN`` and return the commit's URL.
    What is pushed loads anywhere with plain transformers and peft: an adapter names its base by a
    Hub id and revision, so an adapter on a base that exists only in this registry needs
    ``base_repo`` (the base is pushed there first) or ``merge`` (a standalone merged model is
    pushed instead). The files are checked against their recorded hashes first, the model card is
    rewritten for the repository, and the pushed manifest records the hash of every file pushed.
    Only a version newer than every version already in the repository moves ``main``; an older
    one gets its tag alone.
    """
    return _push(registry, entry, repo_id, private, base_repo, merge, notify)[0]


def _push(
    registry: Registry, entry: Entry, repo_id: str, private: bool, base_repo: str | None, merge: bool, notify: Callable[[str], None]
) -> tuple[str, str]:
    """`push`, returning the commit's URL and its sha."""
    registry.verify_files(entry)
    base_source = entry.manifest.get("base_source") or {}
    local_base = entry.kind == "adapter" and entry.base is not None and base_source.get("type") != "hub" and not merge
    if local_base and base_source.get("type") != "registry":
        raise FtregError(f"{entry.ref}'s base {entry.base} is a local directory, which others cannot fetch; pass `merge` to push a standalone merged model")
    if local_base and base_repo is None:
        raise FtregError(
            f"{entry.ref}'s base {entry.base} is only in this registry, so the pushed adapter could not be loaded elsewhere; "
            f"pass `base_repo` OWNER/NAME to push the base there too, or `merge` to push a standalone merged model"
        )
    if base_repo is not None and not local_base:
        raise FtregError(f"`base_repo` is for an adapter whose base is only in this registry; {entry.ref} needs none")
    with registry.staging() as out:
        manifest: dict[str, Any] = json.loads(json.dumps(entry.manifest))  # a deep copy to rewrite
        if merge and entry.kind == "adapter":
            from ftreg.inference.export import export

            export(registry, entry.ref, out / "model", merge=True, notify=notify)
            (out / "model").rename(out / "merged")
            out = out / "merged"
            manifest.update(kind="checkpoint", merged_from=entry.ref, base=None, base_source={}, base_fingerprint=None)
        else:
            for rel in entry.manifest["files"]:  # the recorded files only: nothing planted in the directory travels
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(entry.path / rel, out / rel)
        if local_base:
            assert base_repo is not None and entry.base is not None
            base_commit = _push(registry, registry.resolve(entry.base), base_repo, private, None, False, notify)[1]
            notify(f"pushed its base {entry.base} to {base_repo}")
            manifest["base_source"] = {"type": "hub", "repo_id": base_repo, "revision": base_commit, "registry_ref": entry.base}
            adapter_config = json.loads((out / "adapter_config.json").read_text())
            adapter_config.update(base_model_name_or_path=base_repo, revision=base_commit)
            (out / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")
        write_model_card(out, {**manifest, "name": entry.name}, repo_id=repo_id)
        manifest["files"] = {rel.as_posix(): {"sha256": sha256_file(out / rel), "size": (out / rel).stat().st_size} for rel in artifact_files(out)}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return _upload(out, repo_id, entry.version, private, f"ftreg: {entry.ref}" + (" (merged)" if merge and entry.kind == "adapter" else ""))


def _upload(folder: Path, repo_id: str, version: int, private: bool, message: str) -> tuple[str, str]:
    """One commit tagged vN. It lands on main only when no newer vM is in the repository already."""
    from huggingface_hub import HfApi

    api = HfApi()
    tag = f"v{version}"
    with hub_errors(repo_id):
        api.create_repo(repo_id, private=private, exist_ok=True)
        tags = {ref.name: ref.target_commit for ref in api.list_repo_refs(repo_id).tags}
        if tag in tags:
            return f"{api.endpoint}/{repo_id}/commit/{tags[tag]}", tags[tag]  # pushed before: the tag already names it
        newer = [name for name in tags if name[1:].isdigit() and int(name[1:]) > version]
        branch = "main"
        if newer:
            # Commit on a side branch so main keeps the newest version; the tag is what names this one.
            branch = f"ftreg-{tag}"
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=message, revision=branch, delete_patterns=["*"])
        api.create_tag(repo_id, tag=tag, revision=commit.oid, exist_ok=True)
        if branch != "main":
            api.delete_branch(repo_id, branch=branch)
    return str(commit.commit_url), str(commit.oid)


def pull(registry: Registry, spec: str, name: str, trust_pickle: bool = False, notify: Callable[[str], None] = lambda message: None) -> Entry:
    """Download ``OWNER/NAME[@REVISION]``, check it, and publish it as the next version of ``name``."""
    from huggingface_hub import HfApi, snapshot_download

    validate_name(name)  # before any download
    repo_id, _, revision = spec.partition("@")
    with hub_errors(repo_id):
        info = HfApi().model_info(repo_id, revision=revision or None)
    assert info.siblings is not None and info.sha is not None  # model_info always lists them
    if registry.home.exists():
        for existing in registry.entries(name):
            hub = existing.manifest.get("hub") or {}
            if (hub.get("repo_id"), hub.get("commit")) == (repo_id, info.sha):
                notify(f"{repo_id}@{info.sha[:12]} is already registered as {existing.ref}")
                return existing
    files = [sibling.rfilename for sibling in info.siblings]
    pickles = sorted(f for f in files if f.lower().endswith(PICKLE_SUFFIXES))  # pytorch_model.BIN is one too
    if pickles and not trust_pickle:
        raise FtregError(f"{repo_id}@{info.sha[:12]} holds pickle files ({', '.join(pickles)}), which can run code when loaded; pass `trust_pickle` to download them anyway")
    patterns = SAFE_PATTERNS + ([f"*{suffix}" for suffix in PICKLE_SUFFIXES + tuple(s.upper() for s in PICKLE_SUFFIXES)] if trust_pickle else [])
    # The download cache is a staging directory too: a killed pull leaves nothing the registry's sweep misses.
    with registry.staging() as cache:
        with hub_errors(repo_id):  # only the download: local work below fails with its own errors
            # Pinned to the commit model_info saw, so a push in between cannot mix two commits.
            snapshot = Path(snapshot_download(repo_id, revision=info.sha, allow_patterns=patterns, cache_dir=cache))
        pushed = _read_manifest(snapshot, repo_id)
        listed = set(pushed.get("files", {}))
        with registry.staging() as stage:
            unlisted = []
            for file in snapshot.rglob("*"):
                rel = file.relative_to(snapshot).as_posix()
                if not file.is_file() or rel == MANIFEST:
                    continue
                if pushed and rel not in listed:
                    unlisted.append(rel)  # not part of what was pushed as this version: not kept
                    continue
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, stage / rel)
            if unlisted:
                notify(f"warning: {repo_id} has files its manifest does not list; not kept: {', '.join(sorted(unlisted))}")
            if not any(stage.iterdir()):
                raise FtregError(f"{repo_id}@{info.sha[:12]} has no model files (safetensors, JSON or text); nothing was registered")
            _check_against(pushed, stage, repo_id)
            if pickles:
                _convert_pickles(stage, repo_id, notify)
            fields = {key: pushed[key] for key in CARRIED if key in pushed}
            fields.setdefault("kind", "adapter" if (stage / "adapter_config.json").is_file() else "checkpoint")
            return registry.publish(stage, name=name, hub={"repo_id": repo_id, "revision": revision or "main", "commit": info.sha}, **fields)


def _convert_pickles(stage: Path, repo_id: str, notify: Callable[[str], None]) -> None:
    """Turn pickled weights into safetensors (tensors only, via weights_only=True) and drop every pickle."""
    import torch
    from safetensors.torch import save_file

    converted, dropped = [], []
    for file in sorted(path for path in stage.rglob("*") if path.is_file() and path.name.lower().endswith(PICKLE_SUFFIXES)):
        target = file.parent / CONVERTED.get(file.name.lower(), "")
        if file.name.lower() in CONVERTED and not target.exists():
            try:
                with warnings.catch_warnings():  # torch notes the pickle protocol of foreign files: nothing to act on
                    warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
                    tensors = torch.load(file, map_location="cpu", weights_only=True)
            except Exception as error:  # an UnpicklingError for anything but tensors and plain containers
                raise FtregError(f"{repo_id}: {file.name} holds more than tensors, so it was not loaded ({type(error).__name__}); nothing was registered") from error
            if not isinstance(tensors, dict) or not all(isinstance(value, torch.Tensor) for value in tensors.values()):
                raise FtregError(f"{repo_id}: {file.name} is not a mapping of names to tensors; nothing was registered")
            # Clones: tied weights share storage, which safetensors refuses to write twice.
            save_file({name: tensor.detach().clone().contiguous() for name, tensor in tensors.items()}, str(target), metadata={"format": "pt"})
            converted.append(f"{file.name} -> {target.name}")
        else:
            dropped.append(file.name)
        file.unlink()
    notify(f"{repo_id}: converted pickled weights to safetensors, reading them as tensors only (torch.load weights_only=True): {', '.join(converted) or 'none'}"
           + (f"; not kept: {', '.join(dropped)}" if dropped else ""))


def _read_manifest(snapshot: Path, repo_id: str) -> dict[str, Any]:
    """The pushed manifest, checked against the one schema every version follows; {} when there is none."""
    path = snapshot / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ArtifactError(f"{repo_id}: its {MANIFEST} is not valid JSON ({error}); nothing was registered") from error
    if problems := manifest_problems(manifest):
        raise ArtifactError(f"{repo_id}: its {MANIFEST} is not valid: {'; '.join(problems[:3])}; nothing was registered")
    return dict(manifest)


def _check_against(manifest: dict[str, Any], stage: Path, repo_id: str) -> None:
    """Files pushed by ftreg carry their sha256 in the manifest: what arrived must match it."""
    for rel, recorded in manifest.get("files", {}).items():
        path = stage / rel
        if not path.is_file():
            if not rel.endswith(PICKLE_SUFFIXES):  # pickles are skipped on purpose unless trusted
                raise ArtifactError(f"{repo_id}: {rel} is in the pushed manifest but not in the repository")
        elif sha256_file(path) != recorded["sha256"]:
            raise ArtifactError(f"{repo_id}: {rel} does not match the sha256 its manifest records")
