"""`ftreg install` and `ftreg uninstall`: pip in ftreg's own environment, tried in a throwaway one."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
FAQ = Path(__file__).parent.parent / "examples" / "ftreg-faq"


@pytest.fixture
def throwaway(tmp_path):
    """A fresh virtual environment that sees this one's packages (ftreg, pip, setuptools) and installs into its own."""
    venv = tmp_path / "venv"
    subprocess.run([Path(sys.base_prefix) / "bin" / "python3", "-m", "venv", "--without-pip", venv], check=True)
    own = subprocess.run([venv / "bin" / "python", "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True, check=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True, check=True).stdout.strip()
    Path(own, "ftreg-next-door.pth").write_text(ours + "\n")
    return venv / "bin" / "python"


def _plugin_names(python):
    listed = subprocess.run([python, "-m", "ftreg", "plugins", "--json"], capture_output=True, text=True, check=True, env={"FTREG_HOME": "unused"})
    return {plugin["name"] for plugin in json.loads(listed.stdout)}


def test_install_puts_a_local_plugin_where_ftreg_finds_it_and_uninstall_removes_it(throwaway):
    # --no-index: pip options pass through, and this test reaches no package index.
    installed = subprocess.run([throwaway, "-m", "ftreg", "install", "-e", FAQ, "--no-deps", "--no-build-isolation", "--no-index"], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert "faq" in _plugin_names(throwaway)
    assert "faq" not in _plugin_names(sys.executable)  # into the environment ftreg ran in, not this one
    removed = subprocess.run([throwaway, "-m", "ftreg", "uninstall", "ftreg-faq"], capture_output=True, text=True)
    assert removed.returncode == 0, removed.stderr
    assert "faq" not in _plugin_names(throwaway)


def test_install_without_a_package_is_a_usage_error(cli_run):
    result = cli_run("install")
    assert result.exit_code == 2 and "name a package to install, or -e PATH" in result.stderr
