"""Rebuild the shipped embedded base in ftreg/resources/tiny-gpt2 from `BaseRecipe()` (maintainers only).

Run: .venv/bin/python scripts/build_embedded_base.py
"""

import json
import shutil
import tempfile
from pathlib import Path

from ftreg.bases.embedded import BUILD_INFO, BaseRecipe, build

TARGET = Path(__file__).resolve().parent.parent / "ftreg" / "resources" / "tiny-gpt2"

with tempfile.TemporaryDirectory() as scratch:
    out = Path(scratch)
    record = build(BaseRecipe(), out)
    (out / BUILD_INFO).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(TARGET, ignore_errors=True)
    shutil.copytree(out, TARGET, copy_function=shutil.copyfile)  # the package's modes, not the scratch directory's
    TARGET.chmod(0o755)
print(json.dumps(record["metrics"]))
