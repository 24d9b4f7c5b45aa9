"""The CLI's fast paths must not import the heavy ML stack (it costs seconds)."""

import json
import subprocess
import sys

import pytest

from conftest import HEAVY_MODULES, publish_files

PROBE = """
import sys
from ftreg.cli import cli
try:
    cli(sys.argv[1:], standalone_mode=False)
finally:
    print("HEAVY=" + json.dumps([m for m in {heavy} if m in sys.modules]))
""".replace("{heavy}", repr(HEAVY_MODULES))


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "--json"], ["show", "support"], ["show", "support-v1", "--json"], ["plugins"], ["plugins", "--json"]])
def test_fast_paths_do_not_import_heavy_modules(args, registry):
    publish_files(registry, "support")
    result = subprocess.run([sys.executable, "-c", "import json\n" + PROBE, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    heavy = json.loads(result.stdout.rsplit("HEAVY=", 1)[1])
    assert heavy == []
