"""ftreg: a registry of fine-tuned GPT-2 adapters and checkpoints, extended by plugins.

Importing ftreg is cheap: nothing here loads torch or transformers.
"""

__version__ = "0.1.0"

from ftreg.errors import FtregError  # noqa: E402
from ftreg.hookspecs import hookimpl  # noqa: E402
from ftreg.registry import Entry, Registry  # noqa: E402

__all__ = ["Entry", "FtregError", "Registry", "__version__", "hookimpl"]
