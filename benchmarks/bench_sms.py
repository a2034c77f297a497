"""SMS adapter benchmarks: segment counting and inbound webhook parse+verify.

Run: ``python benchmarks/bench_sms.py``. Each figure is compared with a plain baseline run in
the same process:

- ``segments()`` (encoding, septet/unit count, grapheme-safe split) against the cheapest
  possible check: ``len(text.encode("utf-16-le"))`` plus a set-membership GSM test.
- ``SmsChannel.handle_webhook`` on signed Twilio inbound requests (form parse, signature
  check over every parameter, E.164 normalisation, keyword check, item building) against a
  bare ``parse_qsl`` + one HMAC-SHA1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import anyio
import httpx

from omnilink import ChannelContext, WebhookRequest
from omnilink_sms import GSM7_BASIC, GSM7_EXTENSION, SmsChannel, SmsConfig, segments
from omnilink_sms.testing import FakeTwilio

GSM = GSM7_BASIC | GSM7_EXTENSION
SAMPLES = [
    "Your order #{n} has shipped and will arrive tomorrow between 9 and 12.",
    "Hi! Your verification code is {n}. Don't share it with anyone.",
    "Price: €{n} [incl. VAT] ~ see {{terms}} | reply HELP for help",
    "Bonjour ! Votre colis n°{n} est arrivé. Ça vous convient ? Répondez OUI.",
    "Thanks for your feedback 😀👍🏽 we'll get back to you in {n} minutes",
    "ご注文ありがとうございます。注文番号は{n}です。",
    "Family plan 👨‍👩‍👧‍👦 renewed 🇩🇪 ref {n}",
    "“Smart” quotes – and dashes — in message {n}…",
]


def corpus(size: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(size):
        base = rng.choice(SAMPLES).format(n=i)
        texts.append(" ".join([base] * rng.choice([1, 1, 1, 2, 3, 6])))
    return texts


def baseline_count(text: str) -> tuple[str, int]:
    if all(c in GSM for c in text):
        return "GSM-7", len(text)
    return "UCS-2", len(text.encode("utf-16-le")) // 2


def rates(fns: dict[str, Callable[[], Any]], items: int, repeat: int = 5) -> dict[str, float]:
    """Items per second for each function: best of ``repeat`` runs, interleaved so every
    function sees the same machine load."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: items / seconds for name, seconds in best.items()}


def bench_segments() -> None:
    texts = corpus(5000)
    r = rates(
        {
            "ours": lambda: [segments(t) for t in texts],
            "smart": lambda: [segments(t, smart_encoding=True) for t in texts],
            "plain": lambda: [baseline_count(t) for t in texts],
        },
        len(texts),
    )
    ours, smart, plain = r["ours"], r["smart"], r["plain"]
    multi = sum(segments(t).count > 1 for t in texts)
    print(f"segments(): {ours:,.0f} msg/s   smart_encoding: {smart:,.0f} msg/s   "
          f"baseline: {plain:,.0f} msg/s   ratio ours/baseline: {ours / plain:.3f}   "
          f"({multi} of {len(texts)} messages need several segments)")  # fmt: skip


def _context(fake: FakeTwilio) -> ChannelContext:
    async def submit(items: Sequence[Any]) -> Any:
        raise AssertionError("not used")

    async def get_state(key: str) -> str | None:
        return None

    async def set_state(key: str, value: str) -> None:
        return None

    async def publish(event: Any) -> None:
        return None

    async def thread_messages(account: str, key: str, limit: int) -> list[Any]:
        return []

    return ChannelContext(
        name="sms", http=httpx.AsyncClient(transport=fake.transport()), submit=submit, get_state=get_state,
        set_state=set_state, publish=publish, thread_messages=thread_messages,
        now=lambda: datetime.now(UTC), public_url="https://helpdesk.example",
    )  # fmt: skip


def bench_webhooks() -> None:
    fake = FakeTwilio(numbers=["+14155550100"], webhook_base="https://helpdesk.example/webhooks/sms")
    config = SmsConfig.model_validate(
        {"senders": [{"number": "+14155550100"}],
         "twilio": {"account_sid": fake.account_sid, "auth_token": fake.auth_token}}
    )  # fmt: skip
    channel = SmsChannel(config, _context(fake))
    texts = corpus(2000)
    requests = [fake.customer_message(f"+1415555{i % 9000 + 1000:04d}", body=t) for i, t in enumerate(texts)]
    token = fake.auth_token.encode()

    def baseline(request: WebhookRequest) -> bool:
        params = parse_qsl(request.body.decode(), keep_blank_values=True)
        payload = request.url + "".join(k + v for k, v in sorted(params))
        digest = base64.b64encode(hmac.new(token, payload.encode(), hashlib.sha1).digest()).decode()
        return hmac.compare_digest(digest, request.headers["x-twilio-signature"])

    async def ours_all() -> None:
        for request in requests:
            result = await channel.handle_webhook(request)
            assert result.items

    def run_ours() -> None:
        anyio.run(ours_all)

    assert all(baseline(r) for r in requests)
    r = rates({"ours": run_ours, "plain": lambda: [baseline(r) for r in requests]}, len(requests))
    ours, plain = r["ours"], r["plain"]
    print(
        f"Twilio inbound parse+verify: {ours:,.0f} req/s   baseline (parse_qsl + HMAC): {plain:,.0f} req/s "
        f"ratio ours/baseline: {ours / plain:.3f}"
    )


if __name__ == "__main__":
    bench_segments()
    bench_webhooks()
