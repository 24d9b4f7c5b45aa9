"""The Hugging Face Hub's answers as one-line user errors, for pushing, pulling and fetching a base."""

from __future__ import annotations

from types import TracebackType
from typing import Literal

from ftreg.errors import FtregError


class hub_errors:
    """Turns the Hub client's exceptions inside the block into FtregErrors; the token never appears in them."""

    def __init__(self, repo_id: str, after_failed_transfer: str = "; nothing was registered"):
        self.repo_id = repo_id
        self.after_failed_transfer = after_failed_transfer  # what a failed transfer left behind, for the user

    def __enter__(self) -> hub_errors:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> Literal[False]:
        if error is None or isinstance(error, FtregError):
            return False
        from huggingface_hub.errors import (
            HfHubHTTPError,
            HFValidationError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        name = self.repo_id
        if isinstance(error, HFValidationError):
            raise FtregError(f"{name!r} is not a valid Hub repository id (OWNER/NAME)") from error
        if isinstance(error, RepositoryNotFoundError):
            raise FtregError(f"{name}: no such repository on the Hub (or no access to it)") from error
        if isinstance(error, RevisionNotFoundError):
            raise FtregError(f"{name}: no such revision") from error
        if isinstance(error, LocalEntryNotFoundError):
            raise FtregError(f"{name}: not in the local Hub cache, and the Hub cannot be reached (offline?)") from error
        if isinstance(error, HfHubHTTPError):
            status = error.response.status_code if error.response is not None else "?"
            hint = "; check HF_TOKEN or `hf auth login`" if status in (401, 403) else ""
            raise FtregError(f"{name}: the Hub answered HTTP {status}{hint}") from error
        if isinstance(error, ValueError):  # the client's own refusals, e.g. a path that leaves the download folder
            raise FtregError(f"{name}: refused by the Hub client: {error}") from error
        if isinstance(error, OSError) or type(error).__module__.startswith(("httpx", "requests", "urllib3")):
            raise FtregError(f"{name}: the transfer failed ({type(error).__name__}){self.after_failed_transfer}") from error
        return False
