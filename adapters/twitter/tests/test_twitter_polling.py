"""Polling DMs and mentions with stored cursors, and its agreement with the webhook path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twitter_harness import Clock, Harness, dm, make_harness

from omnilink import Inbound, InboundMessage, TextPart
from omnilink_twitter.testing import FakeX, Post

pytestmark = pytest.mark.anyio

CUSTOMER = "2000000001"


def messages(items: Sequence[Inbound]) -> list[InboundMessage]:
    return [i for i in items if isinstance(i, InboundMessage)]


def without_raw(items: Sequence[Inbound]) -> list[dict[str, Any]]:
    return [m.model_dump(exclude={"raw"}) for m in messages(items)]


async def polling_harness(fake: FakeX, clock: Clock) -> Any:
    return await make_harness(fake, clock, poll_dms=True, poll_mentions=True, max_rate_wait=0)


async def test_polling_pages_back_to_the_cursor_and_submits_oldest_first(fake: FakeX, clock: Clock) -> None:
    harness, http = await polling_harness(fake, clock)
    async with http:
        sent = []
        for i in range(250):
            clock.advance(1)
            sent.append(fake.customer_dm(CUSTOMER, f"message {i}"))
        assert await harness.channel.poll_dms() == 250
        assert [m.provider_message_id for m in messages(harness.submitted)] == [e.id for e in sent]
        assert harness.state["cursor:dm_events"] == sent[-1].id
        assert len([r for r in fake.requests if r[1] == "/2/dm_events"]) == 3  # 100 + 100 + 50

        assert await harness.channel.poll_dms() == 0
        clock.advance(1)
        late = fake.customer_dm(CUSTOMER, "one more")
        assert await harness.channel.poll_dms() == 1
        assert messages(harness.submitted)[-1].provider_message_id == late.id


async def test_cursor_advances_only_after_submit_returns(fake: FakeX, clock: Clock) -> None:
    harness, http = await polling_harness(fake, clock)
    async with http:
        fake.customer_dm(CUSTOMER, "hello")
        original = harness.channel.context._submit

        async def failing(items: Sequence[Inbound]) -> Any:
            raise RuntimeError("store is down")

        harness.channel.context._submit = failing
        with pytest.raises(RuntimeError):
            await harness.channel.poll_dms()
        assert "cursor:dm_events" not in harness.state
        harness.channel.context._submit = original
        assert await harness.channel.poll_dms() == 1


async def test_our_sent_dms_come_back_from_polling_as_echoes(fake: FakeX, clock: Clock) -> None:
    harness, http = await polling_harness(fake, clock)
    async with http:
        fake.customer_dm(CUSTOMER, "hi")
        clock.advance(1)
        result = await harness.channel.send(dm(fake, "hello back"))
        await harness.channel.poll_dms()
        echo = messages(harness.submitted)[-1]
        assert echo.echo
        assert echo.provider_message_id == result.provider_message_id
        assert echo.sender == CUSTOMER


async def test_mentions_are_polled_since_the_last_id_with_their_conversation(
    fake: FakeX, clock: Clock
) -> None:
    harness, http = await polling_harness(fake, clock)
    async with http:
        root = fake.customer_post(CUSTOMER, "@acmehelp my order?")
        clock.advance(1)
        fake.customer_post("2000000009", "unrelated post")
        clock.advance(1)
        follow = fake.customer_post(CUSTOMER, "@acmehelp order 42", in_reply_to=root.id)
        assert await harness.channel.poll_mentions() == 2
        polled = messages(harness.submitted)
        assert [m.thread_key for m in polled] == [f"post:{root.id}"] * 2
        assert polled[1].references == (root.id,)
        assert harness.state["cursor:mentions"] == follow.id
        assert await harness.channel.poll_mentions() == 0


async def test_webhook_and_polling_give_equal_messages_for_the_same_traffic(
    fake: FakeX, clock: Clock
) -> None:
    by_webhook, http1 = await polling_harness(fake, clock)
    by_polling, http2 = await polling_harness(fake, clock)
    async with http1, http2:
        dm1 = fake.customer_dm(CUSTOMER, "first", photo_url="https://pbs.twimg.com/dm/9.jpg")
        clock.advance(2)
        dm2 = fake.customer_dm("2000000002", "second")
        clock.advance(2)
        root = fake.customer_post(CUSTOMER, "@acmehelp public question")
        clock.advance(2)
        reply = fake.customer_post(CUSTOMER, "@acmehelp more detail", in_reply_to=root.id)
        for request in (fake.dm_webhook(dm1, dm2), fake.post_webhook(root), fake.post_webhook(reply)):
            by_webhook.submitted.extend((await by_webhook.channel.handle_webhook(request)).items)
        await by_polling.channel.poll_once()
        webhook_items = sorted(without_raw(by_webhook.submitted), key=lambda m: m["provider_message_id"])
        polling_items = sorted(without_raw(by_polling.submitted), key=lambda m: m["provider_message_id"])
        assert webhook_items == polling_items
        assert len(webhook_items) == 4
        assert messages(by_webhook.submitted)[0].parts[0] == TextPart(text="first")


async def test_run_polls_in_the_background_until_cancelled(fake: FakeX, clock: Clock) -> None:
    harness, http = await make_harness(fake, clock, poll_dms=True, poll_interval=0.01)
    async with http:
        assert harness.channel.has_background_work
        fake.customer_dm(CUSTOMER, "are you there?")
        submitted = anyio.Event()
        original = harness.channel.context._submit

        async def submit(items: Sequence[Inbound]) -> Any:
            result = await original(items)
            submitted.set()
            return result

        harness.channel.context._submit = submit
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                await tg.start(harness.channel.run)
                await submitted.wait()
                tg.cancel_scope.cancel()
        assert messages(harness.submitted)[0].parts == (TextPart(text="are you there?"),)


async def test_polling_is_off_without_configuration(harness: Harness) -> None:
    assert not harness.channel.has_background_work


async def test_poll_rate_limit_waits_in_the_loop_instead_of_crashing(fake: FakeX, clock: Clock) -> None:
    harness, http = await make_harness(fake, clock, poll_dms=True, poll_interval=0.01, max_rate_wait=0)
    async with http:
        fake.settings.limits["dm_events"] = (1, 900)
        fake.customer_dm(CUSTOMER, "one")
        await harness.channel.poll_dms()
        clock.advance(1)
        fake.customer_dm(CUSTOMER, "two")
        with pytest.raises(Exception) as caught:
            await harness.channel.poll_dms()
        assert type(caught.value).__name__ == "RateLimitedError"
        clock.advance(900)
        assert await harness.channel.poll_dms() == 1


_ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["dm", "photo_dm", "post", "reply"]),
        st.integers(min_value=0, max_value=2),
        st.text(alphabet="abc xyz?!é你👍", min_size=1, max_size=20),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25)
@given(_ACTIONS, st.booleans())
def test_webhook_and_polling_agree_for_any_traffic(
    actions: list[tuple[str, int, str]], batched: bool
) -> None:
    async def scenario() -> None:
        clock = Clock()
        fake = FakeX(clock=clock)
        by_webhook, http1 = await polling_harness(fake, clock)
        by_polling, http2 = await polling_harness(fake, clock)
        async with http1, http2:
            requests: list[dict[str, Any]] = []
            posts: list[Post] = []
            for kind, who, text in actions:
                clock.advance(1)
                customer = str(2_000_000_000 + who)
                if kind in ("dm", "photo_dm"):
                    photo = f"https://pbs.twimg.com/dm/{len(requests)}.jpg" if kind == "photo_dm" else None
                    requests.append(fake.activity(dms=[fake.customer_dm(customer, text, photo_url=photo)]))
                else:
                    parent = posts[-1].id if kind == "reply" and posts else None
                    posts.append(fake.customer_post(customer, f"@acmehelp {text}", in_reply_to=parent))
                    requests.append(fake.activity(posts=[posts[-1]]))
            if batched:
                merged: dict[str, Any] = {"for_user_id": fake.settings.user_id}
                for payload in requests:
                    for key, value in payload.items():
                        if isinstance(value, list):
                            merged.setdefault(key, []).extend(value)
                        elif isinstance(value, dict):
                            merged.setdefault(key, {}).update(value)
                requests = [merged]
            for payload in requests:
                result = await by_webhook.channel.handle_webhook(fake.signed_request(payload))
                by_webhook.submitted.extend(result.items)
            await by_polling.channel.poll_once()
        key = "provider_message_id"
        assert sorted(without_raw(by_webhook.submitted), key=lambda m: m[key]) == sorted(
            without_raw(by_polling.submitted), key=lambda m: m[key]
        )

    anyio.run(scenario)
