"""Every hook and every command is documented."""

from pathlib import Path

import pytest

from ftreg import hookspecs
from ftreg.cli import cli

DOCS = Path(__file__).parent.parent / "docs"
HOOKS = [name for name in dir(hookspecs) if name.startswith("register_")]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    assert f"### {hook}(" in (DOCS / "plugins.md").read_text()
    assert getattr(hookspecs, hook).__doc__.strip()


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_in_the_readme(command):
    assert f"ftreg {command}" in (Path(__file__).parent.parent / "README.md").read_text()
