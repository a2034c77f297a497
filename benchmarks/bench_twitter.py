"""X (Twitter) benchmark: webhook verify + parse throughput, and weighted_length throughput.

Run: ``python benchmarks/bench_twitter.py``. Two measurements, each against a plain baseline
done in the same run:

1. Account Activity deliveries (signed by ``FakeX``; mixed DMs with and without photos,
   mentions, replies, typing and read events, 1 and 20 events per delivery), in events/s:
   - baseline: ``json.loads`` of the body plus one HMAC-SHA256 (base64) compared in constant
     time — the least any receiver must do;
   - ``verify_signature`` + ``parse_activity``: the adapter's checks and the construction of
     every canonical ``Inbound`` item;
   - ``TwitterChannel.handle_webhook``: the same through the channel object as the Hub calls
     it (state lookups for reply threading on an in-memory state), under anyio.
2. ``weighted_length`` on a mixed corpus (ASCII, accented Latin, CJK, emoji sequences, URLs),
   in texts/s and MB/s, against ``len(unicodedata.normalize("NFC", text))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import httpx

from omnilink import ChannelContext, WebhookRequest
from omnilink_twitter import TwitterChannel, TwitterConfig, verify_signature, weighted_length
from omnilink_twitter._wire import PostIndex, parse_activity
from omnilink_twitter.testing import FakeX, TwitterKit

TEXTS = [
    "Where is my order #{n}? It was due yesterday.",
    "Grüße aus München, Bestellung {n} ist beschädigt 😞",
    "こんにちは、注文番号{n}について質問があります",
    "@acmehelp see https://example.com/orders/{n}?ref=tw — still nothing 👨\u200d👩\u200d👧",
    "Can I change the delivery address for {n}? It's urgent!! 🇺🇸 #️⃣",
]


def build_deliveries(fake: FakeX, rng: random.Random, per_request: int, count: int) -> list[WebhookRequest]:
    requests: list[WebhookRequest] = []
    n = 0
    for _ in range(count):
        dms, posts, typing, reads = [], [], [], []
        for _ in range(per_request):
            n += 1
            customer = str(2_000_000_000 + rng.randrange(5000))
            text = rng.choice(TEXTS).format(n=n)
            kind = rng.random()
            if kind < 0.55:
                photo = f"https://pbs.twimg.com/dm/{n}.jpg" if rng.random() < 0.2 else None
                dms.append(fake.customer_dm(customer, text, photo_url=photo))
            elif kind < 0.8:
                posts.append(fake.customer_post(customer, "@acmehelp " + text))
            elif kind < 0.9:
                typing.append(customer)
            else:
                reads.append((customer, fake.customer_dm(customer, "x").id))
        requests.append(fake.signed_request(fake.activity(dms=dms, posts=posts, typing=typing, reads=reads)))
    return requests


def events_in(request: WebhookRequest) -> int:
    payload = json.loads(request.body)
    return sum(
        len(payload.get(k, []))
        for k in (
            "direct_message_events",
            "tweet_create_events",
            "direct_message_indicate_typing_events",
            "direct_message_mark_read_events",
        )
    )


def timed(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def baseline(secret: bytes, requests: Sequence[WebhookRequest]) -> None:
    for request in requests:
        mac = hmac.new(secret, request.body, hashlib.sha256).digest()
        expected = "sha256=" + base64.b64encode(mac).decode()
        assert hmac.compare_digest(
            expected.encode(), request.headers["x-twitter-webhooks-signature"].encode()
        )
        json.loads(request.body)


def adapter(secret: str, account: str, requests: Sequence[WebhookRequest]) -> None:
    for request in requests:
        verify_signature(
            secret, request.body, request.headers["x-twitter-webhooks-signature"], channel="twitter"
        )
        parse_activity(json.loads(request.body), account, PostIndex())


def make_channel(fake: FakeX, http: httpx.AsyncClient) -> TwitterChannel:
    state: dict[str, str] = {}

    async def submit(items: Any) -> Any:
        return None

    async def get_state(key: str) -> str | None:
        return state.get(key)

    async def set_state(key: str, value: str) -> None:
        state[key] = value

    async def publish(event: Any) -> None:
        return None

    async def thread_messages(account: str, key: str, limit: int) -> list[Any]:
        return []

    context = ChannelContext(
        name="twitter", http=http, submit=submit, get_state=get_state, set_state=set_state,
        publish=publish, thread_messages=thread_messages, now=fake.now, public_url=None,
    )  # fmt: skip
    config = TwitterConfig.model_validate(TwitterKit().channel_config([fake]))
    return TwitterChannel(config, context)


async def channel_run(channel: TwitterChannel, requests: Sequence[WebhookRequest], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for request in requests:
            await channel.handle_webhook(request)
        best = min(best, time.perf_counter() - start)
    return best


def corpus(rng: random.Random, size: int) -> list[str]:
    pieces = [
        "hello there, ",
        "Bestellung beschädigt — ",
        "注文番号について質問があります。",
        "👍🏽 ",
        "🇯🇵 ",
        "👨\u200d👩\u200d👧\u200d👦 ",
        "https://example.com/some/long/path?x=1 ",
        "see example.org. ",
        "e\u0301te\u0301 ",
        "“quoted” ",
    ]
    return ["".join(rng.choice(pieces) for _ in range(rng.randrange(3, 25))) for _ in range(size)]


def main() -> None:
    rng = random.Random(7)
    fake = FakeX()
    secret = fake.settings.consumer_secret
    account = fake.settings.user_id
    print("X Account Activity webhooks: verify + parse (best of 5; (Nx) = time relative to the baseline)")
    for per_request, count in ((1, 2000), (20, 200)):
        requests = build_deliveries(fake, rng, per_request, count)
        events = sum(events_in(r) for r in requests)
        base = timed(lambda reqs=requests: baseline(secret.encode(), reqs), 5)
        ours = timed(lambda reqs=requests: adapter(secret, account, reqs), 5)

        async def through_channel(reqs: Sequence[WebhookRequest] = requests) -> float:
            async with httpx.AsyncClient(transport=fake.transport()) as http:
                return await channel_run(make_channel(fake, http), reqs, 5)

        chan = anyio.run(through_channel)
        print(f"  {per_request:>2} event(s)/delivery, {events} events:")
        print(f"    baseline json.loads + HMAC      {events / base:>12,.0f} events/s")
        print(f"    verify_signature + parse        {events / ours:>12,.0f} events/s  ({ours / base:.1f}x)")
        print(f"    TwitterChannel.handle_webhook   {events / chan:>12,.0f} events/s  ({chan / base:.1f}x)")

    texts = corpus(rng, 20_000)
    chars = sum(len(t) for t in texts)
    base = timed(lambda: [len(unicodedata.normalize("NFC", t)) for t in texts], 5)
    ours = timed(lambda: [weighted_length(t) for t in texts], 5)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"weighted_length on a mixed corpus ({len(texts)} texts, {chars:,} characters; best of 5)")
    print(f"    baseline len(NFC(text))         {len(texts) / base:>12,.0f} texts/s  {mb / base:8.1f} MB/s")
    print(f"    weighted_length                 {len(texts) / ours:>12,.0f} texts/s  {mb / ours:8.1f} MB/s"
          f"   ({ours / base:.1f}x baseline time)")  # fmt: skip


if __name__ == "__main__":
    main()
