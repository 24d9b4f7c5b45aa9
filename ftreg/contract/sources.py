"""What a dataset-source plugin implements: turning what the user named into a local file."""

from __future__ import annotations

from pathlib import Path


class DatasetSource:
    """Base class for dataset sources. Subclasses set the attributes and implement both methods.

    ``--dataset`` text is offered to every registered source; the first whose ``claims`` is true
    resolves it. ``builtin:NAME`` and local paths are two built-in sources, registered the same way.
    """

    name: str = ""
    description: str = ""

    def claims(self, text: str) -> bool:
        """Whether this source understands ``text`` (e.g. it starts with ``s3://``)."""
        raise NotImplementedError

    def resolve(self, text: str) -> Path:
        """The local file behind ``text``; raise ``DatasetError`` naming ``text`` when there is none."""
        raise NotImplementedError
