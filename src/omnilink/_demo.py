"""``omnilink demo``: an end-to-end helpdesk scenario on the embedded defaults.

Every installed channel that ships a test kit runs against its fake provider served as a real
HTTP server on 127.0.0.1; the Hub stores in a SQLite file and serves its webhooks on
127.0.0.1 too, so every request below crosses a real socket. Customers write in, the
helpdesk replies, one customer moves to another channel mid-issue and stays in one
conversation; the demo prints the threaded conversations and where each link came from.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import _http
from ._channel import WebhookRequest
from ._hub import Hub
from ._models import Conversation, DeliveryStatus, Direction, Message
from ._plugins import PluginHost
from ._store._sqlite import SQLiteStore
from .testing._fake import FakeProvider, serve_app
from .testing._kit import AdapterKit
from .testing._loopback import LoopbackPlugin

PREFERRED = ("livechat", "sms", "email", "messenger", "twitter", "loopback")


class _LateApp:
    """An ASGI app bound after the server started (the Hub needs the server's URL first)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:
            raise RuntimeError("the Hub is not open yet")
        await self.app(scope, receive, send)


def _say(text: str = "") -> None:
    print(text, flush=True)


async def _deliver(hub_url: str, channel: str, request: WebhookRequest) -> int:
    query = urlsplit(request.url).query
    url = f"{hub_url}/webhooks/{channel}{request.path}" + (f"?{query}" if query else "")
    status, body = await _http.post(url, request.body, request.headers)
    if status >= 300:
        raise RuntimeError(f"the Hub refused a webhook: {status} {body[:200]!r}")
    return status


def _describe(message: Message) -> str:
    arrow = "→ customer" if message.direction is Direction.OUTBOUND else "← customer"
    how = message.threading.rule if message.threading else ""
    status = "" if message.status is DeliveryStatus.RECEIVED else f" [{message.status.value}]"
    text = message.text.replace("\n", " ")
    if len(text) > 70:
        text = text[:67] + "..."
    return f"    {arrow} {message.channel:<9} {text!r}{status}  ({how})"


async def run_demo(database: str = "omnilink-demo.sqlite3", keep: bool = False) -> int:
    path = Path(database)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")
    host = PluginHost()
    host.register(LoopbackPlugin(), name="loopback")
    host.load_entry_points()
    specs = host.channel_specs()
    kits = {name: kit for name, kit in host.adapter_kits().items() if name in specs}
    for broken in host.broken:
        _say(f"! plugin {broken.name} ({broken.distribution}) is broken: {broken.error}")
    order = [c for c in PREFERRED if c in kits] + sorted(set(kits) - set(PREFERRED))
    adapters = [c for c in order if c != "loopback"] or ["loopback"]
    # The customer moves to a channel the business can write first on (continue_on + reply).
    starters = [c for c in order if c != adapters[0] and specs[c].capabilities.can_start_conversation]
    chosen = [adapters[0], (starters or ["loopback"])[0]]
    _say(f"omnilink demo — channels with fakes: {', '.join(order)}; scenario uses {', '.join(chosen)}")

    async with contextlib.AsyncExitStack() as stack:
        fakes: dict[str, Sequence[FakeProvider]] = {}
        redirects: dict[str, str] = {}
        for name in chosen:
            fakes[name] = kits[name].make_fakes()
            for fake in fakes[name]:
                url = await stack.enter_async_context(fake.serve())
                for provider_host in fake.hosts:
                    redirects[provider_host] = url
                _say(f"  fake {type(fake).__name__} for {name} serving on {url}")
        late = _LateApp()
        hub_url = await stack.enter_async_context(serve_app(late))
        for name in chosen:
            kits[name].public_url = hub_url
        hub = Hub(
            store=SQLiteStore(path),
            channels={name: kits[name].channel_config(fakes[name]) for name in chosen},
            plugins=[LoopbackPlugin()],
            transport=_http.RedirectTransport(redirects),
            public_url=hub_url,
        )
        await stack.enter_async_context(hub)
        late.app = hub.asgi_app()
        _say(f"  hub serving webhooks on {hub_url}/webhooks/<channel>, storing in {path}")
        _say()
        ok = await _scenario(hub, hub_url, kits, fakes, chosen)
    if not keep:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{path}{suffix}")
    return 0 if ok else 1


async def _scenario(
    hub: Hub,
    hub_url: str,
    kits: dict[str, AdapterKit],
    fakes: dict[str, Sequence[FakeProvider]],
    chosen: list[str],
) -> bool:
    """Run the story; True when the channel switch stayed in one conversation."""
    first, second = chosen[0], chosen[-1]
    ana_first = kits[first].customer_address(1)
    ana_second = kits[second].customer_address(1)
    ben = kits[second].customer_address(2)

    async def customer(channel: str, sender: str, text: str, pid: str) -> None:
        request = kits[channel].inbound_request(
            fakes[channel], sender=sender, text=text, provider_message_id=pid
        )
        await _deliver(hub_url, channel, request)

    _say(f"1. Ana writes on {first}, Ben on {second}")
    await customer(first, ana_first, "Hi, my order #1234 has not arrived yet.", "demo-1")
    await customer(second, ben, "Do you ship to Canada?", "demo-2")
    # A provider retry of Ben's message: stored once.
    await customer(second, ben, "Do you ship to Canada?", "demo-2")
    conversations = {c.contact_id: c for c in await hub.conversations()}
    ana_conv = next(c for c in conversations.values() if c.last_channel == first and c.threads[0].key)
    ben_conv = next(c for c in conversations.values() if c.id != ana_conv.id)

    _say("2. The helpdesk replies to both")
    await hub.reply(ana_conv.id, "Sorry about that, Ana! Let me check order #1234.")
    await hub.reply(ben_conv.id, "Yes, we ship to Canada within 5 working days.")
    await hub.drain()

    _say(f"3. Ana has to leave; the agent continues on {second} ({ana_second})")
    await hub.continue_on(ana_conv.id, second, ana_second, reason=f"Ana asked to continue on {second}")
    await hub.reply(
        ana_conv.id, "Your parcel left our warehouse today; tracking follows here.", channel=second
    )
    await hub.drain()

    _say(f"4. Ana answers on {second}: the message joins her conversation")
    await customer(second, ana_second, "Great, thanks! Please send the tracking number.", "demo-3")

    _say("5. Delivery receipts arrive (one late and out of order: ignored)")
    for conv in (ana_conv, ben_conv):
        for message in await hub.messages(conv.id):
            if message.direction is Direction.OUTBOUND and message.provider_message_id:
                kit = kits[message.channel]
                receipt = kit.delivery_request(
                    fakes[message.channel], message.provider_message_id, DeliveryStatus.DELIVERED
                )
                late = kit.delivery_request(
                    fakes[message.channel], message.provider_message_id, DeliveryStatus.SENT
                )
                for request in (receipt, late):
                    if request is not None:
                        await _deliver(hub_url, message.channel, request)
    _say()
    for conv in await hub.conversations():
        await _print_conversation(hub, conv)
    _say("Ana's conversation as one transcript (hub.transcript), both channels in one timeline:")
    for line in (await hub.transcript(ana_conv.id)).splitlines():
        _say(f"  {line}")
    _say()
    waiting = await hub.awaiting_reply()
    _say("Waiting on a reply: " + (", ".join(f"{ch}: {len(cs)}" for ch, cs in waiting.items()) or "none"))
    for name, stats in (await hub.response_stats()).items():
        first_response = (
            f"{stats.first_response_median:.2f}s" if stats.first_response_median is not None else "-"
        )
        _say(f"First response on {name}: median {first_response} over {stats.conversations} conversation(s)")
    sent = {name: len(kits[name].sent_texts(fakes[name])) for name in chosen}
    _say("Received by the fakes' customers: " + ", ".join(f"{n}: {k} message(s)" for n, k in sent.items()))
    switched = [
        m for m in await hub.messages(ana_conv.id) if m.channel == second and m.direction is Direction.INBOUND
    ]
    if not switched:
        _say(f"FAILED: Ana's message on {second} did not join her conversation")
        return False
    rule = switched[0].threading.rule if switched[0].threading else "?"
    _say(f"OK: Ana's conversation spans {first} and {second} ({rule})")
    return True


async def _print_conversation(hub: Hub, conv: Conversation) -> None:
    contact = await hub.contact(conv.contact_id)
    handles = ", ".join(f"{h.channel}:{h.address}" for h in contact.handles)
    _say(f"Conversation {conv.id} [{conv.status.value}] — contact {contact.id} ({handles})")
    for link in conv.thread_links:
        _say(f"  thread {link.ref.channel}/{link.ref.account}/{link.ref.key}: {link.rule} — {link.detail}")
    for message in await hub.messages(conv.id):
        _say(_describe(message))
    _say()
