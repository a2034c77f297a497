"""Sending DMs and public replies through FakeX: bodies, signing, chains, errors and rate budgets."""

from __future__ import annotations

import httpx
import pytest
from twitter_harness import Clock, Harness, dm, make_harness

from omnilink import (
    CredentialsError,
    HealthState,
    InboundHealth,
    MediaPart,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentSendError,
    RateLimitedError,
    RecipientUnavailableError,
    RetryableSendError,
    TextPart,
    ThreadRef,
)
from omnilink.testing import Fault
from omnilink_twitter import DM_CAPABILITIES, POST_CAPABILITIES, invite_to_dm, is_valid_post
from omnilink_twitter.testing import FakeX

pytestmark = pytest.mark.anyio

CUSTOMER = "2000000001"


def reply(
    fake: FakeX,
    root: str,
    text: str,
    *,
    part_index: int = 0,
    message_id: str = "msg_2",
    to: str | None = None,
) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        conversation_id="cnv_2",
        part_index=part_index,
        account=fake.settings.user_id,
        thread_key=f"post:{root}",
        recipient=CUSTOMER,
        parts=(TextPart(text=text),),
        reply_to_provider_id=to,
    )


async def test_dm_is_sent_with_oauth1_signature_and_returns_the_event_id(harness: Harness) -> None:
    fake = harness.fake
    fake.add_user(CUSTOMER)
    result = await harness.channel.send(dm(fake, "Thanks for writing"))
    [sent] = fake.sent_dms
    assert sent.text == "Thanks for writing"
    assert result.provider_message_id == sent.id
    assert result.details["dm_conversation_id"] == sent.conversation_id


async def test_dm_with_an_image_uploads_it_first(harness: Harness) -> None:
    fake = harness.fake
    fake.add_user(CUSTOMER)
    url = fake.add_file("receipt.png", b"\x89PNG fake", "image/png")
    parts = (
        TextPart(text="your receipt"),
        MediaPart(url=url, content_type="image/png", filename="receipt.png"),
    )
    await harness.channel.send(dm(fake, parts=parts))
    [upload] = fake.uploads.values()
    assert upload.category == "dm_image"
    assert upload.size == len(b"\x89PNG fake")
    [sent] = fake.sent_dms
    assert sent.media_key == f"3_{upload.id}"


async def test_dm_to_a_user_who_refuses_dms_is_recipient_unavailable(harness: Harness) -> None:
    fake = harness.fake
    fake.add_user(CUSTOMER, accepts_dms=False)
    with pytest.raises(RecipientUnavailableError):
        await harness.channel.send(dm(fake))
    assert fake.sent_dms == []


async def test_dm_over_10000_characters_is_refused_before_any_request(harness: Harness) -> None:
    fake = harness.fake
    fake.add_user(CUSTOMER)
    with pytest.raises(PermanentSendError):
        await harness.channel.send(dm(fake, "x" * 10_001))
    assert fake.requests == []


async def test_wrong_oauth1_secret_is_a_credentials_error(fake: FakeX, clock: Clock) -> None:
    built, http = await make_harness(fake, clock, access_token_secret="not-the-secret")
    async with http:
        fake.add_user(CUSTOMER)
        with pytest.raises(CredentialsError):
            await built.channel.send(dm(fake))


async def test_public_reply_answers_the_customers_post(harness: Harness) -> None:
    fake = harness.fake
    root = fake.customer_post(CUSTOMER, "@acmehelp where is my order?")
    result = await harness.channel.send(reply(fake, root.id, "Looking into it now", to=root.id))
    [post] = fake.sent_posts
    assert post.parent_id == root.id
    assert post.conversation_id == root.id
    assert result.provider_message_id == post.id
    assert harness.state[f"post:{post.id}"] == f"{root.id} {CUSTOMER}"


async def test_reply_chain_pieces_each_answer_the_previous_one(harness: Harness) -> None:
    fake = harness.fake
    root = fake.customer_post(CUSTOMER, "@acmehelp long question")
    from omnilink import plan

    planned = plan([TextPart(text="word " * 150)], POST_CAPABILITIES)
    assert len(planned.messages) > 1
    for index, message in enumerate(planned.messages):
        [part] = message.parts
        assert isinstance(part, TextPart)
        out = reply(fake, root.id, part.text, part_index=index, to=root.id)
        await harness.channel.send(out)
    posts = fake.sent_posts
    assert posts[0].parent_id == root.id
    assert [p.parent_id for p in posts[1:]] == [p.id for p in posts[:-1]]
    assert all(is_valid_post(p.text) for p in posts)


async def test_overlong_post_is_split_into_a_chain_by_the_channel_itself(harness: Harness) -> None:
    fake = harness.fake
    root = fake.customer_post(CUSTOMER, "@acmehelp hi")
    result = await harness.channel.send(reply(fake, root.id, "word " * 100, to=root.id))
    assert len(fake.sent_posts) == 2
    assert result.details["chain"] == ",".join(p.id for p in fake.sent_posts)
    assert (result.provider_message_id, *result.other_provider_ids) == tuple(p.id for p in fake.sent_posts)


async def test_duplicate_post_is_a_permanent_error(harness: Harness) -> None:
    fake = harness.fake
    root = fake.customer_post(CUSTOMER, "@acmehelp hi")
    await harness.channel.send(reply(fake, root.id, "Same answer", to=root.id))
    with pytest.raises(PermanentSendError) as caught:
        await harness.channel.send(reply(fake, root.id, "Same answer", to=root.id, message_id="msg_3"))
    assert caught.value.provider_code == "duplicate"


async def test_dm_invitation_is_a_valid_post_with_a_deep_link(harness: Harness) -> None:
    text = invite_to_dm(harness.fake.settings.user_id)
    assert is_valid_post(text)
    assert f"recipient_id={harness.fake.settings.user_id}" in text


async def test_capabilities_depend_on_the_thread(harness: Harness) -> None:
    me = harness.fake.settings.user_id
    assert (
        harness.channel.capabilities_for(ThreadRef(channel="twitter", account=me, key="post:1"))
        is POST_CAPABILITIES
    )
    assert (
        harness.channel.capabilities_for(ThreadRef(channel="twitter", account=me, key=f"dm:1-{me}"))
        is DM_CAPABILITIES
    )


# --------------------------------------------------------------------------- limits and errors


async def test_429_is_rate_limited_with_retry_after_until_reset(harness: Harness) -> None:
    fake = harness.fake
    fake.add_user(CUSTOMER)
    fake.settings.limits["dm_send"] = (2, 900)
    await harness.channel.send(dm(fake, "one"))
    harness.clock.advance(100)
    await harness.channel.send(dm(fake, "two"))
    harness.clock.advance(100)
    with pytest.raises(RateLimitedError) as caught:
        await harness.channel.send(dm(fake, "three"))
    assert caught.value.retry_after == 700
    # The budget was known to be spent: the fake never saw the third request.
    assert [t for t in fake.sent_texts] == ["one", "two"]
    assert len([r for r in fake.requests if r[0] == "POST"]) == 2


async def test_known_exhausted_budget_waits_for_the_reset_before_sending(fake: FakeX, clock: Clock) -> None:
    built, http = await make_harness(fake, clock, max_rate_wait=1000)
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.advance(seconds)

    built.channel.api._sleep = sleep
    async with http:
        fake.add_user(CUSTOMER)
        fake.settings.limits["dm_send"] = (1, 900)
        await built.channel.send(dm(fake, "one"))
        await built.channel.send(dm(fake, "two"))
    assert waited == [900.0]
    assert fake.sent_texts == ["one", "two"]


async def test_usage_cap_reports_health_and_retries_much_later(harness: Harness) -> None:
    fake = harness.fake
    fake.add_user(CUSTOMER)
    fake.usage_capped = True
    with pytest.raises(RetryableSendError) as caught:
        await harness.channel.send(dm(fake))
    assert not isinstance(caught.value, RateLimitedError)
    assert caught.value.provider_code == "usage-capped"
    assert caught.value.retry_after == harness.channel.config.usage_cap_retry_after
    [health] = harness.submitted
    assert isinstance(health, InboundHealth)
    assert health.state is HealthState.USAGE_CAPPED


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, {"title": "Internal Error", "detail": "oops", "type": "about:blank"}, RetryableSendError),
        (503, {"title": "Service Unavailable", "detail": "busy", "type": "about:blank"}, RetryableSendError),
        (401, {"title": "Unauthorized", "detail": "Unauthorized", "type": "about:blank"}, CredentialsError),
        (
            403,
            {
                "title": "Forbidden",
                "detail": "Your account is suspended and is not permitted to access this feature.",
            },
            CredentialsError,
        ),
        (
            403,
            {
                "title": "Client Forbidden",
                "detail": "This request must be made using an approved developer account",
                "type": "https://api.twitter.com/2/problems/client-forbidden",
            },
            CredentialsError,
        ),
        (
            400,
            {
                "title": "Invalid Request",
                "detail": "bad",
                "type": "https://api.twitter.com/2/problems/invalid-request",
            },
            PermanentSendError,
        ),
    ],
)
async def test_problem_json_maps_to_typed_errors(
    harness: Harness, status: int, body: dict[str, str], error: type[Exception]
) -> None:
    fake = harness.fake
    fake.add_user(CUSTOMER)
    fake.inject(Fault(status=status, body=body, endpoint="dm_send"))
    with pytest.raises(error):
        await harness.channel.send(dm(fake))


async def test_timeout_after_the_request_is_outcome_unknown(harness: Harness) -> None:
    fake = harness.fake
    fake.add_user(CUSTOMER)
    fake.inject(Fault(kind="timeout_after"))
    with pytest.raises(OutcomeUnknownError):
        await harness.channel.send(dm(fake))


async def test_timeout_before_the_request_reached_x_is_retryable(harness: Harness) -> None:
    fake = harness.fake
    fake.add_user(CUSTOMER)
    fake.inject(Fault(kind="timeout_before"))
    with pytest.raises(RetryableSendError) as caught:
        await harness.channel.send(dm(fake))
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert fake.sent_dms == []


async def test_connection_refused_is_retryable(harness: Harness) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    harness.channel.api.http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    async with harness.channel.api.http:
        with pytest.raises(RetryableSendError) as caught:
            await harness.channel.send(dm(harness.fake))
    assert not isinstance(caught.value, OutcomeUnknownError)
