"""The runnable examples of the Messenger docs and README run as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PAGES = [ROOT / "docs" / "adapters" / "messenger.md", ROOT / "adapters" / "messenger" / "README.md"]


def _runnable_examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S):
            if "FakeGraphAPI" in block and "anyio.run" in block:
                found.append((page.name, block))
    return found


@pytest.mark.parametrize(("page", "code"), _runnable_examples())
def test_fake_backed_examples_run(
    page: str, code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    runpy.run_path(str(script), run_name="__main__")
    assert "Hi, how can we help?" in capsys.readouterr().out
