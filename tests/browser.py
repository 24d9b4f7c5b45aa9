"""Headless Chromium for tests that check what a user sees: found on PATH, or installed from Debian's packages once."""

import shutil
import subprocess
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


def find_or_install() -> str:
    """The Chromium executable; installs Debian's `chromium` package when none is found, or skips saying what was tried."""
    found = next((path for name in NAMES if (path := shutil.which(name))), None)
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("headless Chromium is needed: no chromium on PATH and no apt-get to install Debian's package")
    tried = []
    for command in (["apt-get", "install", "-y", "--no-install-recommends", "chromium"], ["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            tried.append(f"{' '.join(command)}: {error}")
            continue
        tried.append(f"{' '.join(command)}: exit {done.returncode}")
        if command[1] == "install" and done.returncode == 0:
            break
    found = next((path for name in NAMES if (path := shutil.which(name))), None)
    if not found:
        pytest.skip(f"headless Chromium is needed and could not be installed ({'; '.join(tried)})")
    return found


def screenshot_and_dom(chromium: str, page: Path, png: Path, width: int = 1280, height: int = 1600) -> str:
    """Render ``page`` (a local file) headless: a screenshot into ``png``, and the DOM as Chromium built it."""
    url = page.resolve().as_uri()
    subprocess.run([chromium, *FLAGS, f"--screenshot={png}", f"--window-size={width},{height}", url], capture_output=True, timeout=120, check=True)
    return subprocess.run([chromium, *FLAGS, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
