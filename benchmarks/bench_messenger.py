"""Messenger webhook benchmark: verify + parse throughput on batched payloads.

Run: ``python benchmarks/bench_messenger.py``. Meta batches up to many entries per request,
each with several events. We build signed batches (entries × events of mixed kinds: texts
with non-ASCII escaped as Meta does, quick replies, attachments, postbacks, deliveries with
mids, reads, echoes) and measure, in events per second:

- baseline: what any receiver must do at least — ``json.loads`` of the body plus one
  HMAC-SHA256 compared in constant time;
- ``verify_signature`` + ``parse_payload``: the adapter's checks, wire validation and the
  construction of every canonical ``Inbound`` item (sorted by event time);
- ``MessengerChannel.handle_webhook``: the same through the channel object, as the Hub
  calls it (run under anyio).

The ratio says how much the adapter costs over the bare minimum.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx

from omnilink import ChannelContext, WebhookRequest
from omnilink_messenger import MessengerChannel, MessengerConfig, parse_payload, verify_signature
from omnilink_messenger.testing import FakeEvent, FakeGraphAPI, FakePage

PAGES = ("1001", "1002", "1003")
TEXTS = [
    "Where is my order #{n}?",
    "Grüße aus München, Bestellung {n} ist beschädigt 😞",
    "こんにちは、注文番号{n}について質問があります",
    "Can I change the delivery address for {n}? It's urgent!!",
]


def _events(fake: FakeGraphAPI, rng: random.Random, page: str, count: int, base: int) -> list[FakeEvent]:
    out: list[FakeEvent] = []
    for i in range(count):
        psid = f"7{rng.randrange(10**15):015d}"
        n = base + i
        kind = rng.random()
        if kind < 0.45:
            out.append(fake.message_event(page, psid, rng.choice(TEXTS).format(n=n)))
        elif kind < 0.55:
            out.append(fake.message_event(page, psid, "Yes", quick_reply_payload=f"CONFIRM_{n}"))
        elif kind < 0.65:
            att = [{"type": "image", "payload": {"url": f"https://scontent.example/{n}.jpg"}}]
            out.append(fake.message_event(page, psid, attachments=att))
        elif kind < 0.72:
            out.append(fake.postback_event(page, psid, "Talk to a human", f"HUMAN_{n}"))
        elif kind < 0.82:
            out.append(fake.delivery_event(page, psid, mids=[f"m_{n}_a", f"m_{n}_b"]))
        elif kind < 0.90:
            out.append(fake.read_event(page, psid))
        else:
            out.append(fake.inbox_echo_event(page, psid, f"Answer {n}"))
    return out


def build_batches(count: int, entries: int, per_entry: int, seed: int = 11) -> list[bytes]:
    fake = FakeGraphAPI(pages=tuple(FakePage(p, f"tok-{p}") for p in PAGES))
    rng = random.Random(seed)
    bodies = []
    for b in range(count):
        events: list[FakeEvent] = []
        for e in range(entries):
            events.extend(_events(fake, rng, PAGES[e % len(PAGES)], per_entry, b * 10_000 + e * 100))
        bodies.append(fake.webhook_request(events, entry_size=per_entry).body)
    return bodies


def count_events(bodies: Sequence[bytes]) -> int:
    total = 0
    for body in bodies:
        for entry in json.loads(body)["entry"]:
            total += len(entry.get("messaging", ())) + len(entry.get("standby", ()))
    return total


def timed(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_scenario(secret: str, count: int, entries: int, per_entry: int) -> None:
    bodies = build_batches(count, entries, per_entry)
    key = secret.encode()
    signed = [(body, "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()) for body in bodies]
    events = count_events(bodies)

    def baseline() -> None:
        for body, header in signed:
            digest = hmac.new(key, body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(digest.encode(), header[7:].encode())
            json.loads(body)

    def adapter() -> None:
        for body, header in signed:
            assert verify_signature(secret, body, header)
            parse_payload(body)

    requests = [
        WebhookRequest.build("POST", "https://hd.example/webhooks/messenger", {"x-hub-signature-256": h}, b)
        for b, h in signed
    ]

    async def through_channel() -> float:
        config = MessengerConfig.model_validate(
            {
                "app_secret": secret,
                "verify_token": "v",
                "pages": [{"page_id": p, "access_token": "t"} for p in PAGES],
            }
        )
        async with httpx.AsyncClient() as http:
            channel = MessengerChannel(config, _context(http))
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                for request in requests:
                    await channel.handle_webhook(request)
                best = min(best, time.perf_counter() - start)
            return best

    t_base = timed(baseline, 5)
    t_adapter = timed(adapter, 5)
    t_channel = anyio.run(through_channel)
    label = f"{count} x {entries} x {per_entry} ({events} ev)"
    print(
        f"{label:>28} {events / t_base:>12,.0f} {events / t_adapter:>12,.0f} {events / t_channel:>12,.0f}"
        f" {t_adapter / t_base:>6.1f}x"
    )


def main() -> None:
    print("Messenger webhook verify + parse (events/s, best of 5)")
    print(f"{'batches x entries x events':>28} {'baseline':>12} {'adapter':>12} {'channel':>12} {'ratio':>7}")
    for count, entries, per_entry in [(50, 1, 20), (20, 10, 20), (5, 20, 20)]:
        run_scenario("bench-app-secret", count, entries, per_entry)
    print("baseline = json.loads + one HMAC-SHA256; adapter = verify_signature + parse_payload;")
    print("channel = MessengerChannel.handle_webhook; ratio = adapter time / baseline time.")


def _context(http: httpx.AsyncClient) -> ChannelContext:
    async def refuse(*_: Any) -> Any:
        raise AssertionError("not used")

    return ChannelContext(
        name="messenger",
        http=http,
        submit=refuse,
        get_state=refuse,
        set_state=refuse,
        publish=refuse,
        thread_messages=refuse,
        now=lambda: datetime.now(UTC),
        public_url=None,
    )


if __name__ == "__main__":
    main()
