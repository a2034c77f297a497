"""Malformed input never escapes as an exception and never leaves anything half-stored.

Every refused webhook gets a 4xx whose cause is a typed ``InvalidInputError`` raised by the
channel (``SignatureError`` 403, ``PayloadError`` 400/405), and the store is exactly as it was
before (every table counted). Hypothesis throws byte soup and mutated provider payloads at the
reference ``loopback`` channel through ``Hub.handle_webhook``. The Hub's own API refuses misuse
with typed errors: ``NotFoundError``, ``ConfigurationError``, ``AddressError``,
``LifecycleError``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnilink import (
    AddressError,
    ConfigurationError,
    ConversationStatus,
    Hub,
    InvalidInputError,
    LifecycleError,
    MemoryStore,
    NotFoundError,
    PayloadError,
    SignatureError,
    SQLiteStore,
    Store,
    WebhookRequest,
)
from omnilink.testing import FakeLoopback, LoopbackPlugin, routing_transport, sign
from omnilink.testing._loopback import SIGNATURE_HEADER

SECRET = "whsec"
URL = "https://helpdesk.example/webhooks/loopback"
TS = 1_767_225_600_000
CHANNELS = {"loopback": {"token": "tok", "webhook_secret": SECRET}}


# --------------------------------------------------------------------------- fixtures and helpers


def new_hub(store: Store, fake: FakeLoopback | None = None) -> Hub:
    return Hub(
        store=store,
        channels=CHANNELS,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(fake or FakeLoopback()),
    )


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    # NORMAL: these tests are about what is written, not about fsync; it keeps them fast.
    return SQLiteStore(tmp_path / "hub.sqlite3", synchronous="NORMAL")


async def seeded_hub(store: Store) -> AsyncIterator[Hub]:
    async with new_hub(store) as opened:
        # One stored conversation, so "nothing changed" is checked against a non-empty store.
        response = await opened.handle_webhook("loopback", signed(body_of([message("seed", "ana")])))
        assert response.status == 200
        yield opened


@pytest.fixture
async def hub(store: Store) -> AsyncIterator[Hub]:
    """A Hub on each store (where what gets stored matters)."""
    async for opened in seeded_hub(store):
        yield opened


@pytest.fixture
async def memory_hub() -> AsyncIterator[Hub]:
    """A Hub on the memory store (refusals happen before the store is touched)."""
    async for opened in seeded_hub(MemoryStore()):
        yield opened


def snapshot(store: Store) -> dict[str, int]:
    """How many rows every table holds (every dict of the memory store)."""
    if isinstance(store, MemoryStore):
        return {name: len(table) for name, table in vars(store._data).items() if isinstance(table, dict)}
    assert isinstance(store, SQLiteStore)
    with sqlite3.connect(store.path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}


def message(pid: str, sender: str, **override: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "id": pid,
        "from": sender,
        "to": "biz",
        "text": "hi",
        "ts": TS,
    }
    event.update(override)
    return event


def body_of(events: Any) -> bytes:
    return json.dumps({"events": events}).encode()


def signed(body: bytes, *, method: str = "POST", signature: str | None = None) -> WebhookRequest:
    headers = {SIGNATURE_HEADER: sign(SECRET, body) if signature is None else signature}
    return WebhookRequest.build(method, URL, headers, body)


async def assert_refused(hub: Hub, request: WebhookRequest, status: int | None = None) -> int:
    """The channel raises a typed error, the Hub answers 4xx, the store is unchanged."""
    before = snapshot(hub.store)
    with pytest.raises(InvalidInputError):
        await hub.channel("loopback").handle_webhook(request)
    response = await hub.handle_webhook("loopback", request)
    assert 400 <= response.status < 500, response
    if status is not None:
        assert response.status == status, response
    assert snapshot(hub.store) == before
    return response.status


# --------------------------------------------------------------------------- explicit cases

NOT_PAYLOADS = {
    "empty": b"",
    "not json": b"hello",
    "truncated json": b'{"events": [',
    "non-utf8": b'{"events": [\xff\xfe]}',
    "latin-1 text": '{"events": [{"text": "café"}]}'.encode("latin-1"),
    "json null": b"null",
    "json list": b"[]",
    "json number": b"42",
    "json string": b'"events"',
    "events null": b'{"events": null}',
    "events number": b'{"events": 3}',
    "events string": b'{"events": "abc"}',
    "events object": b'{"events": {"type": "message"}}',
    "event number": b'{"events": [1]}',
    "event null": b'{"events": [null]}',
    "event list": b'{"events": [[]]}',
    "no events key": b'{"event": []}',
    "NaN ts": body_of([message("x", "bob")]).replace(str(TS).encode(), b"NaN"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("body", list(NOT_PAYLOADS.values()), ids=list(NOT_PAYLOADS))
async def test_signed_body_that_is_not_a_loopback_payload_gets_400_and_stores_nothing(
    memory_hub: Hub, body: bytes
) -> None:
    await assert_refused(memory_hub, signed(body), 400)


BAD_EVENTS: dict[str, dict[str, Any]] = {
    "unknown type": {"type": "reaction", "id": "x"},
    "type missing": {"id": "x", "from": "bob", "to": "biz", "ts": TS},
    "type number": message("x", "bob", type=7),
    "id missing": {k: v for k, v in message("x", "bob").items() if k != "id"},
    "from missing": {k: v for k, v in message("x", "bob").items() if k != "from"},
    "to missing": {k: v for k, v in message("x", "bob").items() if k != "to"},
    "ts missing": {k: v for k, v in message("x", "bob").items() if k != "ts"},
    "ts text": message("x", "bob", ts="yesterday"),
    "ts null": message("x", "bob", ts=None),
    "ts list": message("x", "bob", ts=[1]),
    "from empty": message("x", ""),
    "from with spaces": message("x", "bob smith"),
    "from object": {**message("x", "bob"), "from": {"name": "bob"}},
    "from punctuation": message("x", "bob@example.com"),
    "name number": message("x", "bob", name=5),
    "reply_to object": message("x", "bob", reply_to={"id": "y"}),
    "media string": message("x", "bob", media="https://x/y.png"),
    "media without url": message("x", "bob", media={"type": "image"}),
    "status unknown": {"type": "status", "id": "lb_1", "status": "exploded", "account": "biz", "ts": TS},
    "status without id": {"type": "status", "status": "delivered", "account": "biz", "ts": TS},
    "status without account": {"type": "status", "id": "lb_1", "status": "delivered", "ts": TS},
}


@pytest.mark.anyio
@pytest.mark.parametrize("bad", list(BAD_EVENTS.values()), ids=list(BAD_EVENTS))
async def test_batch_with_one_bad_event_is_refused_whole_and_stores_nothing(
    memory_hub: Hub, bad: dict[str, Any]
) -> None:
    # Valid events around the bad one: none of them may be stored (no half-stored batch).
    events = [message("good-1", "carol"), bad, message("good-2", "dave")]
    await assert_refused(memory_hub, signed(body_of(events)), 400)
    assert (
        await memory_hub.store.run(lambda tx: tx.message_by_provider_id("loopback", "biz", "good-1")) is None
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "0" * 64,
        sign(SECRET, b"another body"),
        sign("wrong secret", body_of([message("x", "bob")])),
        sign(SECRET, body_of([message("x", "bob")])).upper(),
        sign(SECRET, body_of([message("x", "bob")]))[:-1],
        "sha256=" + sign(SECRET, body_of([message("x", "bob")])),
    ],
    ids=["missing", "empty", "zeros", "other body", "other secret", "uppercase", "truncated", "prefixed"],
)
async def test_bad_signature_gets_403_and_stores_nothing(memory_hub: Hub, signature: str | None) -> None:
    body = body_of([message("x", "bob")])
    headers = {} if signature is None else {SIGNATURE_HEADER: signature}
    request = WebhookRequest.build("POST", URL, headers, body)
    with pytest.raises(SignatureError):
        await memory_hub.channel("loopback").handle_webhook(request)
    await assert_refused(memory_hub, request, 403)


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "PATCH"])
async def test_webhook_with_a_method_other_than_post_gets_405(memory_hub: Hub, method: str) -> None:
    with pytest.raises(PayloadError):
        await memory_hub.channel("loopback").handle_webhook(
            signed(body_of([message("x", "bob")]), method=method)
        )
    await assert_refused(memory_hub, signed(body_of([message("x", "bob")]), method=method), 405)


@pytest.mark.anyio
async def test_huge_bodies_are_refused_without_storing(memory_hub: Hub) -> None:
    huge = b"x" * 3_000_000
    await assert_refused(
        memory_hub, WebhookRequest.build("POST", URL, {SIGNATURE_HEADER: "0" * 64}, huge), 403
    )
    await assert_refused(memory_hub, signed(huge), 400)
    many_bad = body_of([message(f"h{i}", "bob") for i in range(3_000)] + [{"type": "nope"}])
    await assert_refused(memory_hub, signed(many_bad), 400)


@pytest.mark.anyio
async def test_webhook_for_an_unknown_channel_gets_404(memory_hub: Hub) -> None:
    before = snapshot(memory_hub.store)
    response = await memory_hub.handle_webhook("sms", signed(body_of([message("x", "bob")])))
    assert response.status == 404
    assert snapshot(memory_hub.store) == before


@pytest.mark.anyio
async def test_refusals_through_the_asgi_app_are_4xx(memory_hub: Hub) -> None:
    transport = httpx.ASGITransport(app=memory_hub.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://helpdesk.example") as client:
        before = snapshot(memory_hub.store)
        body = body_of([message("x", "bob")])
        answers = [
            await client.post("/webhooks/loopback", content=body),
            await client.post("/webhooks/loopback", content=b"\xff" * 100, headers={SIGNATURE_HEADER: "00"}),
            await client.post(
                "/webhooks/loopback",
                content=b"\xff\x00",
                headers={SIGNATURE_HEADER: sign(SECRET, b"\xff\x00")},
            ),
            await client.get("/webhooks/loopback"),
            await client.post("/webhooks/nope", content=body),
            await client.post("/webhooks/loopback/extra/path", content=body),
        ]
        assert [a.status_code for a in answers] == [403, 403, 400, 405, 404, 403]
        assert snapshot(memory_hub.store) == before


# --------------------------------------------------------------------------- hypothesis

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(-1e9, 1e9, allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
event_keys = st.sampled_from(
    ["type", "id", "from", "to", "text", "ts", "name", "reply_to", "media", "status"]
)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message or status event with keys dropped and values replaced by JSON soup."""
    base = draw(
        st.sampled_from(
            [
                message("mut-1", "erin"),
                message("mut-2", "erin", media={"url": "https://x/y.png", "type": "image"}),
                {"type": "status", "id": "lb_1", "status": "delivered", "account": "biz", "ts": TS},
            ]
        )
    )
    event = dict(base)
    for key in draw(st.lists(event_keys, max_size=3)):
        if draw(st.booleans()):
            event.pop(key, None)
        else:
            event[key] = draw(json_values)
    return event


def status_class(hub_status: int) -> str:
    return "ok" if 200 <= hub_status < 300 else "refused" if 400 <= hub_status < 500 else "other"


async def assert_never_crashes(hub: Hub, request: WebhookRequest) -> None:
    """Accepted (2xx) or refused with a typed error (4xx) and nothing stored; nothing else."""
    before = snapshot(hub.store)
    with contextlib.suppress(InvalidInputError):
        await hub.channel("loopback").handle_webhook(request)
    response = await hub.handle_webhook("loopback", request)
    assert status_class(response.status) in ("ok", "refused"), response
    if status_class(response.status) == "refused":
        assert snapshot(hub.store) == before


@pytest.mark.anyio
@given(body=st.binary(max_size=2000), sign_it=st.booleans())
async def test_byte_soup_is_refused_with_4xx_and_stores_nothing(hub: Hub, body: bytes, sign_it: bool) -> None:
    request = signed(body) if sign_it else signed(body, signature="f" * 64)
    await assert_never_crashes(hub, request)


@pytest.mark.anyio
@given(payload=json_values)
async def test_signed_json_soup_never_crashes_the_hub(hub: Hub, payload: Any) -> None:
    await assert_never_crashes(hub, signed(json.dumps(payload).encode()))
    await assert_never_crashes(hub, signed(body_of(payload)))
    await assert_never_crashes(hub, signed(body_of([payload])))


@pytest.mark.anyio
@given(events=st.lists(mutated_events(), min_size=1, max_size=4))
async def test_mutated_provider_events_are_stored_whole_or_refused_whole(
    hub: Hub, events: list[dict[str, Any]]
) -> None:
    await assert_never_crashes(hub, signed(body_of(events)))


@pytest.mark.anyio
@given(signature=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80))
async def test_arbitrary_ascii_signatures_get_403(memory_hub: Hub, signature: str) -> None:
    body = body_of([message("sig", "frank")])
    if signature == sign(SECRET, body):
        return
    await assert_refused(memory_hub, signed(body, signature=signature), 403)


# --------------------------------------------------------------------------- the Hub API's typed errors


@pytest.mark.anyio
async def test_unknown_ids_raise_not_found(hub: Hub) -> None:
    before = snapshot(hub.store)
    with pytest.raises(NotFoundError):
        await hub.conversation("cnv_missing")
    with pytest.raises(NotFoundError):
        await hub.message("msg_missing")
    with pytest.raises(NotFoundError):
        await hub.contact("con_missing")
    with pytest.raises(NotFoundError):
        await hub.reply("cnv_missing", "hello?")
    with pytest.raises(NotFoundError):
        await hub.set_status("cnv_missing", ConversationStatus.CLOSED)
    with pytest.raises(NotFoundError):
        await hub.continue_on("cnv_missing", "loopback", "bob")
    with pytest.raises(NotFoundError):
        await hub.undo_link("lnk_missing")
    with pytest.raises(NotFoundError):
        await hub.confirm_link("lnk_missing")
    assert snapshot(hub.store) == before


@pytest.mark.anyio
async def test_unconfigured_channel_raises_configuration_error(hub: Hub) -> None:
    [conv] = await hub.conversations()
    before = snapshot(hub.store)
    with pytest.raises(ConfigurationError):
        hub.channel("sms")
    with pytest.raises(ConfigurationError):
        await hub.start_conversation("sms", "+15551234567", "hello")
    with pytest.raises(ConfigurationError):
        await hub.reply(conv.id, "hello", channel="sms")
    with pytest.raises(ConfigurationError):
        await hub.continue_on(conv.id, "sms", "+15551234567")
    with pytest.raises(ConfigurationError):
        await hub.ingest("sms", [])
    assert snapshot(hub.store) == before


@pytest.mark.anyio
@pytest.mark.parametrize(
    "channels",
    [{"sms": {"token": "x"}}, {"loopback": {"token": "tok"}}, {"loopback": {**CHANNELS["loopback"], "x": 1}}],
    ids=["no plugin provides it", "missing setting", "unknown setting"],
)
async def test_hub_with_a_bad_channel_config_refuses_to_open(channels: dict[str, Any]) -> None:
    hub = Hub(
        store=MemoryStore(),
        channels=channels,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(),
    )
    with pytest.raises(ConfigurationError):
        await hub.__aenter__()
    with pytest.raises(LifecycleError):
        await hub.reply("cnv_x", "hello")


@pytest.mark.anyio
@pytest.mark.parametrize("address", ["", "   ", "bob smith", "bob@example.com", "+1 555", "émile!", "a/b"])
async def test_invalid_address_raises_address_error_and_stores_nothing(hub: Hub, address: str) -> None:
    [conv] = await hub.conversations()
    before = snapshot(hub.store)
    with pytest.raises(AddressError):
        await hub.start_conversation("loopback", address, "hello")
    with pytest.raises(AddressError):
        await hub.continue_on(conv.id, "loopback", address)
    assert snapshot(hub.store) == before


@pytest.mark.anyio
async def test_closed_hub_raises_lifecycle_error(store: Store) -> None:
    fake = FakeLoopback()
    hub = new_hub(store, fake)
    with pytest.raises(LifecycleError):
        await hub.reply("cnv_x", "too early")
    with pytest.raises(LifecycleError):
        _ = hub.store
    async with hub:
        await hub.handle_webhook("loopback", fake.webhook([fake.message_event("ana", "hi")]))
        [conv] = await hub.conversations()
    with pytest.raises(LifecycleError):
        await hub.reply(conv.id, "too late")
    with pytest.raises(LifecycleError):
        await hub.handle_webhook("loopback", fake.webhook([fake.message_event("ana", "again")]))
    with pytest.raises(LifecycleError):
        await hub.ingest("loopback", [])
    with pytest.raises(LifecycleError):
        await hub.start_conversation("loopback", "bob", "hello")
    with pytest.raises(LifecycleError):
        await hub.continue_on(conv.id, "loopback", "bob")
    with pytest.raises(LifecycleError):
        await hub.drain()
    with pytest.raises(LifecycleError):
        await hub.conversation(conv.id)
    with pytest.raises(LifecycleError):
        async with hub.subscribe():
            pass
    with pytest.raises(LifecycleError):
        async with hub:
            pass
    assert fake.sent == []
