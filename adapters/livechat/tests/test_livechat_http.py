"""The HTTP fallback and the upload endpoint: same guarantees as the socket, without one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from livechat_support import SITE

from omnilink import Hub, MediaPart
from omnilink_livechat.testing import ScriptedVisitor

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="https://help.example/channels/livechat"
    ) as client:
        yield client


async def start(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.post("/api/session", json={"site": SITE})
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def bearer(visitor: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {visitor['token']}"}


async def test_http_send_is_acked_with_the_stored_id_and_deduped(hub: Hub, client: httpx.AsyncClient) -> None:
    visitor = await start(client)
    body = {"session": visitor["session"], "client_id": "h1", "text": "sent over HTTP"}
    first = await client.post("/api/messages", json=body, headers=bearer(visitor))
    again = await client.post("/api/messages", json=body, headers=bearer(visitor))
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["duplicate"] is True
    message = await hub.message(first.json()["id"])
    assert message.text == "sent over HTTP"
    assert message.thread_key == visitor["session"].partition(".")[0]


async def test_http_history_returns_messages_after_an_id(hub: Hub, client: httpx.AsyncClient) -> None:
    visitor = await start(client)
    ids = []
    for i in range(3):
        answer = await client.post(
            "/api/messages",
            json={"session": visitor["session"], "client_id": f"h{i}", "text": f"m{i}"},
            headers=bearer(visitor),
        )
        ids.append(answer.json()["id"])
    reply = await hub.reply((await hub.message(ids[0])).conversation_id, "agent here")
    await hub.drain(timeout=5)
    history = await client.get(
        "/api/messages", params={"session": visitor["session"], "since": ids[1]}, headers=bearer(visitor)
    )
    assert [(m["id"], m["text"]) for m in history.json()["messages"]] == [
        (ids[2], "m2"),
        (reply.id, "agent here"),
    ]


async def test_http_without_a_token_is_unauthorized(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/messages", json={"client_id": "x", "text": "hi"})
    assert answer.status_code == 401
    forged = await client.get("/api/messages", headers={"authorization": "Bearer v1.vis_abcdefghijk.1.sig"})
    assert forged.status_code == 401


async def test_http_from_an_unlisted_origin_is_forbidden(client: httpx.AsyncClient) -> None:
    visitor = await start(client)
    answer = await client.post(
        "/api/messages",
        json={"session": visitor["session"], "client_id": "o1", "text": "hi"},
        headers={**bearer(visitor), "origin": "https://evil.example"},
    )
    assert answer.status_code == 403


async def test_cors_preflight_allows_listed_origins_only(client: httpx.AsyncClient) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        }

    allowed = await client.options("/api/messages", headers=preflight("https://shop.example"))
    assert allowed.headers.get("access-control-allow-origin") == "https://shop.example"
    refused = await client.options("/api/messages", headers=preflight("https://evil.example"))
    assert refused.headers.get("access-control-allow-origin") is None


async def test_upload_is_attached_to_a_message_as_media(
    hub: Hub, app: Any, client: httpx.AsyncClient
) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        uploaded = await client.post(
            "/api/uploads",
            content=PNG,
            params={"filename": "../../etc/receipt.png"},
            headers={"authorization": f"Bearer {visitor.token}", "content-type": "image/png"},
        )
        assert uploaded.status_code == 201
        assert uploaded.json()["filename"] == "receipt.png"
        server_id = await visitor.say("my receipt", upload=uploaded.json()["upload"])
    message = await hub.message(server_id)
    media = [part for part in message.parts if isinstance(part, MediaPart)]
    assert len(media) == 1
    assert media[0].content_type == "image/png"
    assert media[0].url.startswith("https://help.example/channels/livechat/uploads/upl_")
    download = await client.get(media[0].url.removeprefix("https://help.example/channels/livechat"))
    assert download.content == PNG
    assert download.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("livechat_settings", [{"upload_max_bytes": 1000}])
async def test_upload_over_the_size_limit_is_refused(client: httpx.AsyncClient) -> None:
    visitor = await start(client)
    answer = await client.post(
        "/api/uploads", content=PNG + b"\x00" * 1000, headers={**bearer(visitor), "content-type": "image/png"}
    )
    assert answer.status_code == 413


async def test_upload_of_a_type_not_allowed_is_refused(client: httpx.AsyncClient) -> None:
    visitor = await start(client)
    answer = await client.post(
        "/api/uploads", content=b"<html></html>", headers={**bearer(visitor), "content-type": "text/html"}
    )
    assert answer.status_code == 415


async def test_upload_that_is_not_what_it_claims_is_refused(client: httpx.AsyncClient) -> None:
    visitor = await start(client)
    answer = await client.post(
        "/api/uploads",
        content=b"MZ\x90\x00 not a png",
        headers={**bearer(visitor), "content-type": "image/png"},
    )
    assert answer.status_code == 415
    assert answer.json()["error"] == "type_mismatch"


async def test_another_visitors_upload_cannot_be_attached(app: Any, client: httpx.AsyncClient) -> None:
    owner = await start(client)
    uploaded = await client.post(
        "/api/uploads", content=PNG, headers={**bearer(owner), "content-type": "image/png"}
    )
    async with ScriptedVisitor.in_process(app, SITE) as other:
        with pytest.raises(RuntimeError, match="bad_upload"):
            await other.say("look", upload=uploaded.json()["upload"])


async def test_widget_script_is_served_as_javascript(client: httpx.AsyncClient) -> None:
    answer = await client.get("/widget.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")


async def test_http_receipt_marks_a_reply_of_the_own_session_only(
    hub: Hub, client: httpx.AsyncClient
) -> None:
    alice = await start(client)
    sent = await client.post(
        "/api/messages",
        json={"session": alice["session"], "client_id": "r1", "text": "hi"},
        headers=bearer(alice),
    )
    reply = await hub.reply((await hub.message(sent.json()["id"])).conversation_id, "hello Alice")
    await hub.drain(timeout=5)
    provider_id = (await hub.message(reply.id)).provider_ids[0]
    mallory = await start(client)
    stolen = await client.post(
        "/api/receipts",
        json={"session": mallory["session"], "provider_id": provider_id, "status": "read"},
        headers=bearer(mallory),
    )
    assert stolen.status_code == 404
    own = await client.post(
        "/api/receipts",
        json={"session": alice["session"], "provider_id": provider_id, "status": "read"},
        headers=bearer(alice),
    )
    assert own.status_code == 200
    assert (await hub.message(reply.id)).status.value == "read"
