"""Every snippet of docs/python-api.md runs, in order, as a user would run them."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).parent.parent / "docs" / "python-api.md"


@pytest.mark.slow
def test_every_snippet_runs(hub, embedded_base, ftreg_home, tmp_path, monkeypatch, capsys):
    snippets = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(snippets) >= 8
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for number, snippet in enumerate(snippets, start=1):
        try:
            exec(compile(snippet, f"{DOC.name} snippet {number}", "exec"), namespace)
        except Exception as error:  # noqa: BLE001 - say which snippet broke
            pytest.fail(f"snippet {number} raised {type(error).__name__}: {error}\n{snippet}")
    printed = capsys.readouterr().out
    # The comments in the doc say what a few lines print; check those that do not vary.
    for expected in ("tiny-gpt2-v1", "{'r': 16, 'alpha': 32, 'dropout': 0.05}", "strategy 'lora8bit' has no option 'rank'",
                     "finished support-v1", "support-copy-v1 alice/support", "unknown reference 'support-v9'"):
        assert expected in printed
