"""Every hook, every command and every public-API snippet is documented, and the docs run."""

import inspect
import re
from pathlib import Path

import pytest

from ftreg import plugins
from ftreg.cli import cli

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
plugins.load_plugins()
HOOKS = sorted(name for name in dir(plugins.pm.hook) if not name.startswith("_"))


def test_the_hooks_are_found():
    assert {"register_dataset_formats", "on_train_log", "version_published", "resolve_base"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook):
    spec = getattr(plugins.pm.hook, hook).spec
    arguments = ", ".join(spec.argnames)
    assert f"### {hook}({arguments})\n" in (DOCS / "plugins.md").read_text()
    docstring = inspect.getdoc(spec.function)
    assert docstring and all(f":param {name}:" in docstring for name in spec.argnames), f"{hook} needs a :param: line per argument"


def _testing_names():
    import ftreg.testing

    return sorted(name for name, obj in vars(ftreg.testing).items() if not name.startswith("_") and getattr(obj, "__module__", None) == "ftreg.testing")


@pytest.mark.parametrize("name", _testing_names())
def test_every_public_name_of_ftreg_testing_is_documented(name):
    assert f"`{name}" in (DOCS / "plugins.md").read_text().split("## Testing a plugin")[1]


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_in_the_readme(command):
    assert f"ftreg {command}" in (ROOT / "README.md").read_text()


def test_the_documented_first_release_imports_still_work():
    # docs/plugins.md of 0.1 showed these; plugins written against them must keep working.
    from ftreg import hookimpl  # noqa: F401
    from ftreg.formats import DatasetFormat, Example, Problems, Segment, read_text  # noqa: F401
    from ftreg.training import TrainingStrategy  # noqa: F401


def test_the_cli_uses_only_the_public_api():
    """cli.py imports `ftreg` and names only what ftreg.__all__ exports, never a submodule."""
    import ftreg

    source = (ROOT / "ftreg" / "cli.py").read_text()
    imports = re.findall(r"^\s*(?:from (ftreg[\w.]*) import ([\w, ]+)|import (ftreg[\w.]*))", source, re.M)
    assert imports
    for module, names, plain in imports:
        assert (module or plain) == "ftreg", f"cli.py imports {module or plain}"
        for name in filter(None, (n.strip() for n in names.split(","))):
            assert name in ftreg.__all__, name
    for attribute in set(re.findall(r"(?<![\"\w.])ftreg\.(\w+)", source)):
        assert attribute in ftreg.__all__, f"cli.py uses ftreg.{attribute}, which the public API does not export"


def test_every_public_name_resolves_and_import_ftreg_stays_light():
    import subprocess
    import sys

    import ftreg

    assert all(getattr(ftreg, name) is not None for name in ftreg.__all__)
    probe = "import sys, ftreg; print(sorted(m for m in ('torch', 'transformers', 'peft', 'datasets', 'bitsandbytes', 'ftreg.api') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"
