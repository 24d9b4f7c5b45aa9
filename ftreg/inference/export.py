"""Export a registry version as a plain Hugging Face directory that needs no ftreg to load.

An adapter exports as its PEFT files (for `PeftModel.from_pretrained` on its base) or, merged,
as a standalone model plus the base's tokenizer; a checkpoint exports as its model files.
The result is built in a hidden sibling directory and renamed into place only when complete,
so a failure never leaves a half-written export behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ftreg.errors import FtregError
from ftreg.files import atomic_directory
from ftreg.inference.compose import compose
from ftreg.registry import Registry


def export(registry: Registry, ref: str, out_dir: Path, merge: bool = False, notify: Callable[[str], None] = lambda message: None) -> Path:
    """Write version ``ref`` into ``out_dir`` (absent or empty) and return ``out_dir``.

    ``merge`` folds an adapter into its recorded base; a checkpoint is exported as it is.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir.is_dir() and not any(out_dir.iterdir())):
        raise FtregError(f"{out_dir} already exists and is not an empty directory; choose a new output directory")
    entry = registry.resolve(ref)
    if merge and entry.kind == "checkpoint":
        notify(f"{entry.ref} is a full checkpoint and needs no merge; exporting it as it is")
        merge = False

    if merge:
        # compose() verifies the adapter's files and its base fingerprint before loading anything,
        # so a corrupt adapter or a changed base fails here, before out_dir is touched.
        composed = compose(registry, adapter=entry.ref)
        # Training may have used an 8-bit base, but compose() loads the base unquantized; forcing
        # fp32 also covers a base stored in half precision, so the merge itself loses nothing.
        model = composed.model.float().merge_and_unload()
        notify(f"merged {composed.description} in full precision (fp32): the base is loaded dequantized, so an 8-bit-trained adapter merges without quantization loss")

        def write(target: Path) -> None:
            model.save_pretrained(target, safe_serialization=True)
            composed.tokenizer.save_pretrained(target)

    else:
        registry.verify_files(entry)

        def write(target: Path) -> None:
            # Exactly the files the manifest records (and that were just verified): never manifest.json.
            for rel in entry.manifest["files"]:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(entry.path / rel, target / rel)

    try:
        with atomic_directory(out_dir) as stage:
            write(stage)
    except OSError as error:  # an unwritable or impossible place: the user's to fix
        raise FtregError(f"{out_dir}: cannot write the export there: {error.strerror or error}") from error
    return out_dir
