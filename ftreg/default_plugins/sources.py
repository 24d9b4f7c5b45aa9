"""Built-in dataset sources: ``builtin:NAME`` for the datasets shipped with ftreg, Hub dataset ids,
and local files."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from ftreg.contract import DatasetSource, ResolvedData
from ftreg.datasets.tables import DATA_SUFFIXES, open_table
from ftreg.errors import DatasetError, FtregError
from ftreg.hookspecs import hookimpl
from ftreg.hub_errors import hub_errors

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS = {
    "support": "support/train.json",  # customer-support instruction/response pairs
    "support-test": "support/test.json",  # held-out pairs whose instructions are not in "support"
}


class BuiltinSource(DatasetSource):
    name = "builtin"
    description = f"datasets shipped with ftreg: {', '.join(BUILTIN_PREFIX + name for name in BUILTIN_DATASETS)}"

    def claims(self, text: str) -> bool:
        return text.startswith(BUILTIN_PREFIX)

    def resolve(self, text: str) -> Path:
        name = text.removeprefix(BUILTIN_PREFIX)
        if name not in BUILTIN_DATASETS:
            raise DatasetError(f"unknown built-in dataset {text!r}; available: {', '.join(BUILTIN_PREFIX + n for n in BUILTIN_DATASETS)}")
        return Path(str(files("ftreg.resources") / BUILTIN_DATASETS[name]))


HF_PREFIX = "hf://datasets/"
# OWNER/NAME[@REVISION][:SPLIT] in the Hub's repo-id charset; git refs never hold ":", so the split is unambiguous.
HUB_ID = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[^:@\s]+))?(?::(?P<split>[\w.-]+))?")


class HubSource(DatasetSource):
    name = "hub"
    description = "a dataset repository on the Hugging Face Hub: OWNER/NAME[@REVISION][:SPLIT] (its data files, cached, pinned to the commit)"

    def claims(self, text: str) -> bool:
        if text.startswith(HF_PREFIX):
            return True
        # A local path wins, and a missing data file (data/train.jsonl) stays the file source's "no such file".
        return HUB_ID.fullmatch(text) is not None and not text.lower().endswith(tuple(DATA_SUFFIXES)) and not Path(text).exists()

    def resolve(self, text: str) -> ResolvedData:
        match = HUB_ID.fullmatch(text.removeprefix(HF_PREFIX))
        if match is None:
            raise DatasetError(f"{text}: not a Hub dataset id (OWNER/NAME[@REVISION][:SPLIT])")
        repo_id, revision, split = match["repo"], match["revision"], match["split"]
        snapshot = _download(text, repo_id, revision)
        commit = snapshot.name  # the cache keeps each commit's files under snapshots/<commit sha>
        pinned = f"{repo_id}@{commit}"
        if not snapshot.is_dir() or not any(path.is_file() for path in snapshot.rglob("*")):
            raise DatasetError(f"{text}: the dataset repository has no data files ({', '.join(DATA_SUFFIXES)}) at commit {commit[:12]}")
        try:
            table = open_table(snapshot, split)  # an unknown split is named now, by the id rather than the cache's path
        except DatasetError as error:
            raise DatasetError(str(error).replace(str(snapshot), f"{repo_id}@{commit[:12]}")) from error
        # The split read is part of the content: a run started on :train must not resume on :test.
        fingerprint = f"hub:{pinned}:{table.split}"
        return ResolvedData(snapshot, reference=pinned + (f":{split}" if split else ""), fingerprint=fingerprint, split=split)


def _download(text: str, repo_id: str, revision: str | None) -> Path:
    """The snapshot of ``repo_id``'s data files at ``revision``, from the normal Hub cache when it is there."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.utils import tqdm

    class Bars(tqdm):
        """Download bars on a terminal only: in logs and pipes a "Fetching 2 files" bar is noise before the one-line answer."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("disable", None)  # tqdm's rule: None is on for a terminal, off otherwise
            super().__init__(*args, **kwargs)

    # Data files only (a save_to_disk layout's state.json is JSON too): no card, no scripts, no images.
    patterns = [f"*{suffix}" for suffix in DATA_SUFFIXES] + [f"*{suffix.upper()}" for suffix in DATA_SUFFIXES]
    try:
        with hub_errors(repo_id, after_failed_transfer=""):  # a dataset is fetched to be read, not registered
            return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, allow_patterns=patterns, tqdm_class=Bars))
    except FtregError as error:
        cause = error.__cause__
        local = "" if text.startswith(HF_PREFIX) else ", and no such local file or directory"
        if isinstance(cause, RevisionNotFoundError):
            raise DatasetError(f"{text}: dataset {repo_id} has no revision {revision!r}") from cause
        if isinstance(cause, GatedRepoError):
            raise DatasetError(f"{text}: dataset {repo_id} is gated; accept its conditions on the Hub and set HF_TOKEN (or `hf auth login`)") from cause
        if isinstance(cause, RepositoryNotFoundError):
            raise DatasetError(f"{text}: no such dataset on the Hub (or no access to it){local}") from cause
        if isinstance(cause, LocalEntryNotFoundError):
            raise DatasetError(f"{text}: not in the local Hub cache, and the Hub cannot be reached (offline?){local}") from cause
        raise DatasetError(str(error)) from cause


class FileSource(DatasetSource):
    name = "file"
    description = "a local data file (JSON, JSONL, CSV, TSV, text, Parquet, Arrow), a directory of them, or a `datasets` save_to_disk directory"

    def claims(self, text: str) -> bool:
        return True  # asked last: whatever no other source claims is a path

    def resolve(self, text: str) -> Path:
        path = Path(text)
        if path.is_dir():
            return path
        if path.exists() and not path.is_file():
            raise DatasetError(f"{text}: not a regular file (a pipe or device?); name a dataset file")
        if not path.is_file():
            raise DatasetError(f"{text}: no such file")
        return path


@hookimpl(trylast=True)
def register_dataset_sources(register: Callable[[DatasetSource], None]) -> None:
    register(BuiltinSource())
    register(HubSource())  # before the file source, which claims everything
    register(FileSource())
