"""What a dataset-source plugin implements: turning what the user named into local data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ResolvedData:
    """Local data a source found, and how a version's record should name it."""

    path: Path  # a data file, a directory of data files, or a `datasets` save_to_disk directory
    # How the record finds the same data again (e.g. a Hub id pinned to its commit); None: the absolute path.
    reference: str | None = None
    # What identifies the content (e.g. "hub:owner/name@<commit>:train"); None: ftreg hashes the files it reads.
    fingerprint: str | None = None
    split: str | None = None  # which split of a dataset that has several; None: "train", or the only one


class DatasetSource:
    """Base class for dataset sources. Subclasses set the attributes and implement both methods.

    ``--dataset`` text is offered to every registered source; the first whose ``claims`` is true
    resolves it. Local paths, ``builtin:NAME`` and Hub dataset ids are built-in sources, registered
    the same way.
    """

    name: str = ""
    description: str = ""

    def claims(self, text: str) -> bool:
        """Whether this source understands ``text`` (e.g. it starts with ``s3://``)."""
        raise NotImplementedError

    def resolve(self, text: str) -> Path | ResolvedData:
        """The local data behind ``text``; raise ``DatasetError`` naming ``text`` when there is none."""
        raise NotImplementedError
