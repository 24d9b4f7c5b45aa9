"""Finding a base model: a registry checkpoint, a local directory, or a Hugging Face Hub id.

Every kind resolves to a local directory in Hugging Face layout, so training and generation
run the same code whichever it is; the embedded tiny base is just a registry checkpoint.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from ftreg import plugins
from ftreg.bases.embedded import EMBEDDED_BASE_NAME, ensure_embedded_base
from ftreg.contract import Entry, ResolvedBase
from ftreg.errors import ArtifactError, FtregError, InvalidName
from ftreg.files import sha256_file
from ftreg.hub_errors import hub_errors
from ftreg.registry import Registry, parse_ref

# The architecture and tokenizer files; with the weight files they decide what a base computes.
FINGERPRINT_FILES = ("config.json", "tokenizer.json", "vocab.json", "merges.txt", "special_tokens_map.json")
# What is fetched from the Hub: weights as safetensors, configs and tokenizer files, never pickles.
HUB_PATTERNS = ["*.json", "*.safetensors", "merges.txt", "vocab.txt", "*.model"]


# Weight files: what the base computes depends on them as much as on its config.
WEIGHT_SUFFIXES = (".safetensors", ".bin")
FINGERPRINT_PREFIX = "sha256-v2:"  # config, tokenizer and weights; ftreg 0.1 wrote "sha256:" over config and tokenizer only


def fingerprint(path: Path, known: dict[str, str] | None = None) -> str:
    """A digest of everything that decides what the base in ``path`` computes: config, tokenizer and weights.

    ``known`` maps file names to sha256 digests already recorded (a registry version's manifest),
    so those weights are not read again.
    """
    digest = hashlib.sha256(_config_digest(path))
    for file in sorted(path.iterdir()):
        if file.is_file() and file.name.lower().endswith(WEIGHT_SUFFIXES):
            hexdigest = (known or {}).get(file.name) or _file_sha256(file, *_stat_key(file))
            digest.update(file.name.encode() + b"\0" + bytes.fromhex(hexdigest))
    return FINGERPRINT_PREFIX + digest.hexdigest()


def fingerprint_matches(recorded: str, base: ResolvedBase) -> bool:
    """Whether a recorded base fingerprint, of either kind, names ``base``."""
    if recorded.startswith(FINGERPRINT_PREFIX):
        return recorded == base.fingerprint
    return recorded == "sha256:" + _config_digest(base.path).hex()  # a record of ftreg 0.1


def _config_digest(path: Path) -> bytes:
    """The config and tokenizer files' digest (all ftreg 0.1 fingerprinted)."""
    if not (path / "config.json").is_file():
        raise ArtifactError(f"{path} has no config.json: not a Hugging Face model directory")
    digest = hashlib.sha256()
    for name in FINGERPRINT_FILES:
        file = path / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return digest.digest()


def _stat_key(file: Path) -> tuple[int, int]:
    stat = file.stat()
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=64)
def _file_sha256(file: Path, size: int, mtime_ns: int) -> str:
    """A weight file's sha256, read once per process while its size and mtime stay the same."""
    return sha256_file(file)


def resolve_base(spec: str | None, registry: Registry) -> ResolvedBase:
    """Resolve ``spec``; None means the embedded tiny base, published on first use.

    In order: a local directory, a registry checkpoint, a reference a plugin understands
    (the ``resolve_base`` hook), and last a Hugging Face Hub id (``owner/name[@revision]``).
    """
    if spec is None:
        return _from_entry(ensure_embedded_base(registry), registry)
    if Path(spec).is_dir():
        path = Path(spec).resolve()
        return ResolvedBase(str(path), path, fingerprint(path), {"type": "path"})
    try:
        ref = parse_ref(spec)
    except InvalidName:
        ref = None  # e.g. "openai-community/gpt2": not a registry name
    if ref is not None and ref.name == EMBEDDED_BASE_NAME:
        # A fresh registry (one an adapter was just pulled into, say) gets the embedded base on
        # first use; the fingerprint check still decides whether it is the right one.
        ensure_embedded_base(registry)
    if ref is not None and registry.exists(spec):
        return _from_entry(registry.resolve(spec), registry)
    found = plugins.first_result("resolve_base", reference=spec)
    if found is not None:
        path = Path(found).resolve()
        return ResolvedBase(spec, path, fingerprint(path), {"type": "plugin", "reference": spec})
    return _from_hub(spec)


def _from_entry(entry: Entry, registry: Registry) -> ResolvedBase:
    if entry.kind != "checkpoint":
        raise FtregError(f"{entry.ref} is an {entry.kind}, not a base model; pass a checkpoint as `base`")
    registry.verify_files(entry)  # weights are about to be loaded from it
    known = {rel: record["sha256"] for rel, record in entry.manifest["files"].items()}  # just verified
    return ResolvedBase(entry.ref, entry.path, fingerprint(entry.path, known), {"type": "registry", "ref": entry.ref})


def _from_hub(spec: str) -> ResolvedBase:
    repo_id, _, revision = spec.partition("@")
    from huggingface_hub import snapshot_download

    try:
        with hub_errors(repo_id):
            path = Path(snapshot_download(repo_id, revision=revision or None, allow_patterns=HUB_PATTERNS))
    except FtregError as error:
        # Whatever went wrong, the user may have meant a registry name or a directory: say so.
        raise FtregError(f"base {spec!r} is not a registry checkpoint, a local directory, or a reachable Hub model ({error})") from error
    commit = path.name  # snapshot directories are named after the resolved commit
    return ResolvedBase(f"{repo_id}@{commit}", path, fingerprint(path), {"type": "hub", "repo_id": repo_id, "revision": commit})


def context_length(model_dir: Path) -> int:
    """How many positions the model in ``model_dir`` attends over (GPT-2: n_positions)."""
    config = json.loads((model_dir / "config.json").read_text())
    return int(config.get("n_positions") or config.get("max_position_embeddings") or 1024)
