"""The omnilink command and plugin event handlers."""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
import pytest

from omnilink import Event, Hub, MessageReceived, hookimpl
from omnilink._cli import main
from omnilink.testing import FakeLoopback

from .conftest import FakeChat


def test_adapters_command_lists_installed_channels_with_capabilities(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["adapters", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    for name, entry in listed.items():
        assert entry["distribution"], f"{name} has no distribution"
        assert "text_max" in entry["capabilities"]
    assert main(["adapters"]) == 0


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.seen = anyio.Event()

    async def handle(self, event: Event) -> None:
        if event.kind == "message_received":
            raise RuntimeError("a failing handler must not stop the Hub")
        self.events.append(event)
        self.seen.set()


@pytest.mark.anyio
async def test_plugin_event_handlers_get_events_and_failures_are_contained(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    recorder = Recorder()

    class HandlerPlugin:
        @hookimpl
        def omnilink_event_handlers(self) -> list[Recorder]:
            return [recorder]

    hub = make_hub()
    hub._plugins.append(HandlerPlugin())
    fake = fakes[0]
    async with hub:
        async with hub.subscribe() as events:
            await hub.handle_webhook("loopback", fake.webhook([fake.message_event("ana", "hi")]))
            assert isinstance(await events.receive(), MessageReceived)
        [conv] = await hub.conversations()
        await hub.reply(conv.id, "hello")
        with anyio.fail_after(5):
            await recorder.seen.wait()
    assert recorder.events[0].kind == "message_queued"
