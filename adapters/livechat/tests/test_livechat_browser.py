"""The widget in a real browser (headless Chromium driven by Playwright) against a live Hub.

The Hub and a uvicorn server run in a background thread with their own event loop (an anyio
blocking portal); the test drives the page with Playwright's sync API and the Hub through the
portal. Chromium comes from Debian (``apt-get install chromium``), never ``playwright install``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from livechat_support import SITE, livechat_config
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from omnilink import DeliveryStatus, Direction, Hub, MediaPart, MemoryStore, Message, ThreadRef, Typing
from omnilink_livechat import LivechatChannel, OfflineEmail
from omnilink_livechat import _plugin as livechat_plugin

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REPO_ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")


def ensure_chromium() -> str:
    """Debian's Chromium: installed when missing and we are root, else skipped (failed on CI)."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=False, env=env, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "chromium"], check=False, env=env, capture_output=True, timeout=900
        )
        if os.path.exists(CHROMIUM):
            return CHROMIUM
    reason = f"{CHROMIUM} is missing and could not be installed (apt-get install chromium as root)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason=reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Shop</title></head>
<body><h1>Shop</h1>
<script src="/channels/livechat/widget.js" data-site="{site}" defer></script>
</body></html>"""


@dataclass
class LiveHub:
    """A Hub with the livechat channel, served on 127.0.0.1 by uvicorn in a portal thread."""

    portal: BlockingPortal
    hub: Hub
    url: str
    events: list[Any]

    @property
    def channel(self) -> LivechatChannel:
        found = self.hub.channel("livechat")
        assert isinstance(found, LivechatChannel)
        return found

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.portal.call(fn, *args)

    def wait_for(self, check: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def inbound(self) -> list[Message]:
        async def collect() -> list[Message]:
            found: list[Message] = []
            for conversation in await self.hub.conversations():
                found.extend(
                    m for m in await self.hub.messages(conversation.id) if m.direction is Direction.INBOUND
                )
            return found

        return list(self.portal.call(collect))


class _Recorder:
    def __init__(self, events: list[Any]) -> None:
        self.events = events

    async def handle(self, event: Any) -> None:
        self.events.append(event)


@pytest.fixture
def live_hub() -> Iterator[LiveHub]:
    import uvicorn

    with start_blocking_portal("asyncio") as portal:
        hub = Hub(
            store=MemoryStore(),
            channels={"livechat": livechat_config()},
            plugins=[livechat_plugin],
            load_entry_points=False,
        )
        with portal.wrap_async_context_manager(hub):
            events: list[Any] = []
            portal.call(hub.add_handler, _Recorder(events))

            async def page(request: Any) -> HTMLResponse:
                return HTMLResponse(PAGE.format(site=SITE))

            app = Starlette(routes=[Route("/", page), Mount("/", app=hub.asgi_app())])
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws="auto"))
            done = portal.start_task_soon(server.serve, [sock])
            deadline = time.monotonic() + 10
            while not server.started:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.02)
            try:
                yield LiveHub(portal, hub, f"http://127.0.0.1:{port}", events)
            finally:
                server.should_exit = True
                portal.call(hub.channel("livechat").aclose)
                done.result(timeout=10)
                sock.close()


@pytest.fixture
def page(browser: Browser, live_hub: LiveHub) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(live_hub.url + "/")
    try:
        yield page
    finally:
        context.close()


def open_chat(page: Page) -> None:
    page.get_by_role("button", name="Chat with us").click()
    expect(page.get_by_role("status")).to_have_text("Online")


def say(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def test_visitor_message_reaches_the_hub_and_the_agents_reply_and_typing_show(
    page: Page, live_hub: LiveHub
) -> None:
    open_chat(page)
    say(page, "Hello from the browser")
    stored = live_hub.wait_for(
        lambda: [m for m in live_hub.inbound() if m.text == "Hello from the browser"], "message"
    )
    message = stored[0]
    conversation = live_hub.call(live_hub.hub.conversation, message.conversation_id)
    assert conversation.threads[0].channel == "livechat"
    assert conversation.threads[0] == ThreadRef(channel="livechat", account=SITE, key=message.thread_key)
    expect(page.locator(".msg.visitor .meta").first).to_have_text("Sent")
    live_hub.call(live_hub.channel.mark_read_by_agent, message.thread_key, message.id)
    expect(page.locator(".msg.visitor .meta").first).to_have_text("Read")

    page.get_by_label("Message", exact=True).press_sequentially("still typ")
    live_hub.wait_for(
        lambda: [e for e in live_hub.events if isinstance(e, Typing) and e.on], "visitor typing"
    )

    live_hub.call(live_hub.channel.send_typing, SITE, message.thread_key, True)
    expect(page.get_by_text("Agent is typing…")).to_be_visible()
    live_hub.call(live_hub.hub.reply, message.conversation_id, "Hi! An agent here. <b>not bold</b>")
    expect(page.locator(".msg.agent .text")).to_have_text("Hi! An agent here. <b>not bold</b>")
    assert page.locator(".msg.agent b").count() == 0
    expect(page.get_by_text("Agent is typing…")).to_have_count(0)

    reply = live_hub.wait_for(
        lambda: [
            m
            for m in live_hub.call(live_hub.hub.messages, message.conversation_id)
            if m.direction is Direction.OUTBOUND and m.status is DeliveryStatus.READ
        ],
        "the reply to be read",
    )
    assert reply
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "livechat-widget.png"))


def test_reload_restores_the_conversation(page: Page, live_hub: LiveHub) -> None:
    open_chat(page)
    say(page, "Before the reload")
    stored = live_hub.wait_for(lambda: live_hub.inbound(), "message")
    live_hub.call(live_hub.hub.reply, stored[0].conversation_id, "Reply before the reload")
    expect(page.locator(".msg.agent .text")).to_have_text("Reply before the reload")
    page.reload()
    expect(page.get_by_role("status")).to_have_text("Online")
    expect(page.locator(".msg .text")).to_have_text(["Before the reload", "Reply before the reload"])
    say(page, "After the reload")
    live_hub.wait_for(lambda: len(live_hub.inbound()) == 2, "second message")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    page.locator("#olc-file").set_input_files(
        files=[{"name": "receipt.png", "mimeType": "image/png", "buffer": png}]
    )
    uploaded = live_hub.wait_for(
        lambda: [m for m in live_hub.inbound() if any(isinstance(p, MediaPart) for p in m.parts)], "upload"
    )
    expect(page.get_by_role("link", name="receipt.png")).to_be_visible()
    media = next(p for p in uploaded[0].parts if isinstance(p, MediaPart))
    assert media.filename == "receipt.png"
    conversations = live_hub.call(live_hub.hub.conversations)
    assert len(conversations) == 1


def test_dropped_connection_loses_nothing(page: Page, live_hub: LiveHub) -> None:
    open_chat(page)
    say(page, "First")
    first = live_hub.wait_for(lambda: live_hub.inbound(), "first message")[0]
    live_hub.call(live_hub.channel.disconnect_session, first.thread_key)
    expect(page.get_by_role("status")).to_have_text("Reconnecting…")
    page.context.set_offline(True)
    say(page, "Typed while offline")
    live_hub.call(live_hub.hub.reply, first.conversation_id, "Reply while you were away")
    live_hub.call(live_hub.hub.drain)
    page.context.set_offline(False)
    expect(page.get_by_role("status")).to_have_text("Online", timeout=20_000)
    expect(page.locator(".msg.agent .text")).to_have_text("Reply while you were away")
    live_hub.wait_for(lambda: len(live_hub.inbound()) == 2, "the message typed offline")
    texts = sorted(m.text for m in live_hub.inbound())
    assert texts == ["First", "Typed while offline"]
    expect(page.locator(".msg.visitor .meta").last).to_have_text("Sent")


def test_offline_form_continues_on_email_when_no_agent_is_available(page: Page, live_hub: LiveHub) -> None:
    handed_over: list[OfflineEmail] = []

    async def continue_on_email(request: OfflineEmail) -> None:
        handed_over.append(request)

    live_hub.channel.on_offline_email = continue_on_email
    open_chat(page)
    live_hub.call(live_hub.channel.set_agents_available, False)
    form = page.get_by_role("form", name="Continue by email")
    expect(form).to_be_visible()
    page.get_by_label("Your email address").fill("ann@example.com")
    page.get_by_label("Your message (optional)").fill("Please write to me")
    page.get_by_role("button", name="Send by email").click()
    expect(page.get_by_text("Thanks! We will answer at ann@example.com.")).to_be_visible()
    assert [h.address for h in handed_over] == ["ann@example.com"]
    assert [m.text for m in live_hub.inbound()] == ["Please write to me"]


def test_without_websockets_the_widget_falls_back_to_http(browser: Browser, live_hub: LiveHub) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    context.add_init_script("delete window.WebSocket;")
    page = context.new_page()
    try:
        page.goto(live_hub.url + "/")
        page.get_by_role("button", name="Chat with us").click()
        expect(page.get_by_role("status")).to_have_text("Online (slow connection)")
        say(page, "Sent over HTTP")
        stored = live_hub.wait_for(lambda: live_hub.inbound(), "message over HTTP")
        expect(page.locator(".msg.visitor .meta").first).to_have_text("Sent")
        live_hub.call(live_hub.hub.reply, stored[0].conversation_id, "Polled reply")
        expect(page.locator(".msg.agent .text")).to_have_text("Polled reply")
    finally:
        context.close()
