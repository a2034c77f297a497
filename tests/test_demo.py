"""The README's demo runs end to end and keeps the channel switch in one conversation."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnilink._demo import run_demo


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn serves the Hub in-loop: asyncio only
@pytest.mark.anyio
async def test_demo_threads_the_channel_switch_into_one_conversation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_demo(str(tmp_path / "demo.sqlite3"), keep=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK: Ana's conversation spans" in out
    assert "continue_on" in out
    transcript = out.split("one transcript", 1)[1].split("Waiting on a reply", 1)[0]
    lines = [line.strip() for line in transcript.splitlines() if line.strip().startswith("[")]
    assert len(lines) == 4, transcript
    assert lines[0].endswith("Hi, my order #1234 has not arrived yet.")
    assert lines[-1].endswith("Great, thanks! Please send the tracking number.")
    assert (tmp_path / "demo.sqlite3").exists()
