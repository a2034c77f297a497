"""The ASGI app the Hub mounts under ``/channels/livechat``: socket, HTTP fallback, uploads, widget.

Routes (relative to the mount point):

- ``WS  /ws``                 the widget's socket (JSON frames, see ``_frames``)
- ``POST /api/session``       get or resume a visitor token and a chat session
- ``POST /api/messages``      send a message without a socket (ack in the answer)
- ``GET  /api/messages``      history of the session since an id
- ``POST /api/uploads``       upload a file (raw body; size and type limits); gives an upload token
- ``GET  /uploads/{id}``      download an upload
- ``GET  /widget.js``         the widget
"""

from __future__ import annotations

import json
import secrets
from importlib import resources
from typing import Any

import anyio
from anyio.abc import TaskGroup
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from omnilink import DeliveryStatus

from . import _api
from ._api import Refused, first_error, origin_allowed
from ._channel import Connection, LivechatChannel, TokenBucket
from ._frames import (
    CLIENT_FRAME,
    CloseFrame,
    DeliveredFrame,
    HelloFrame,
    MessageFrame,
    OfflineEmailFrame,
    PingFrame,
    ReadFrame,
    ResyncFrame,
    TypingFrame,
    stored_message_frame,
)
from ._tokens import TokenError, issue_upload_token
from ._uploads import StoredUpload, looks_like, safe_filename

HELLO_TIMEOUT = 10.0
"""Seconds a new socket has to say hello."""
MAX_BAD_FRAMES = 20
"""Malformed frames tolerated on one socket before it is closed."""

# Close codes (4000-4999 are for applications).
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_OVERLOADED = 1013
CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_SITE = 4404


def base_url(channel: LivechatChannel, connection: HTTPConnection) -> str:
    """The absolute URL of the mount point, for links to uploads."""
    root = connection.scope.get("root_path", "")
    if channel.context.public_url:
        return f"{channel.context.public_url.rstrip('/')}{root}"
    scheme = {"ws": "http", "wss": "https"}.get(connection.url.scheme, connection.url.scheme)
    return f"{scheme}://{connection.url.netloc}{root}"


def build_app(channel: LivechatChannel) -> Starlette:
    settings = channel.settings
    widget_source = resources.files("omnilink_livechat").joinpath("static/widget.js").read_bytes()

    # ------------------------------------------------------------------ socket

    async def socket(websocket: WebSocket) -> None:
        if not origin_allowed(channel, websocket.headers):
            await websocket.close(code=CLOSE_POLICY)
            return
        await websocket.accept()
        hello: HelloFrame | None = None
        with anyio.move_on_after(HELLO_TIMEOUT):
            try:
                raw = await websocket.receive_text()
                frame = CLIENT_FRAME.validate_json(raw)
            except (ValidationError, KeyError, WebSocketDisconnect):
                frame = None
            if isinstance(frame, HelloFrame):
                hello = frame
        if hello is None:
            await _close(websocket, CLOSE_POLICY, "hello_expected", "the first frame must be a hello")
            return
        if hello.site != settings.site_id:
            await _close(websocket, CLOSE_BAD_SITE, "unknown_site", f"unknown site {hello.site!r}")
            return
        try:
            visitor = await channel.start(
                hello.token,
                hello.session,
                identity=hello.identity,
                identity_hash=hello.identity_hash,
                name=hello.name,
            )
        except TokenError as exc:
            await _close(websocket, CLOSE_UNAUTHORIZED, "unauthorized", str(exc))
            return
        connection = Connection(visitor, settings.send_buffer)
        channel.register(connection)
        try:
            connection.push(
                {
                    "type": "welcome",
                    "visitor_id": visitor.visitor_id,
                    "token": visitor.token,
                    "session": visitor.session_token,
                    "agents_available": channel.agents_available,
                    "heartbeat": settings.heartbeat_seconds,
                    "max_text": settings.max_text_chars,
                    "title": settings.title,
                }
            )
            await _push_history(connection, hello.since)
            async with anyio.create_task_group() as tg:

                async def write_then_stop() -> None:
                    await _write(websocket, connection)
                    tg.cancel_scope.cancel()

                tg.start_soon(write_then_stop)
                await _read(websocket, connection, tg)
                tg.cancel_scope.cancel()
        finally:
            channel.unregister(connection)
            connection.outbox.close()
            if connection.typing:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    await channel.accept_typing(connection, False)
        if connection.overflowed:
            await _close(websocket, CLOSE_OVERLOADED, "too_slow", "resync from your last id")
        elif connection.disconnected:
            await _close(
                websocket, CLOSE_GOING_AWAY, "disconnected", "reconnect and resync from your last id"
            )

    async def _push_history(connection: Connection, since: str | None) -> None:
        messages = await channel.history(connection.visitor, since)
        frames = [stored_message_frame(m, connection.visitor.visitor_id) for m in messages]
        for frame, message in zip(frames, messages, strict=True):
            frame["provider_ids"] = list(message.provider_ids)
            connection.pushed_ids.update(message.provider_ids)
        connection.push({"type": "history", "since": since, "messages": frames})

    async def _write(websocket: WebSocket, connection: Connection) -> None:
        try:
            async with connection.inbox:
                async for text in connection.inbox:
                    await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The visitor went away mid-send; the reader sees the disconnect.
            return

    async def _read(websocket: WebSocket, connection: Connection, tg: TaskGroup) -> None:
        frames = TokenBucket(settings.frames_per_second, max(10.0, settings.frames_per_second * 3))
        per_second = settings.messages_per_minute / 60
        messages = TokenBucket(per_second, max(5.0, settings.messages_per_minute / 3))
        typing_at = -1e9
        bad = 0
        idle = settings.heartbeat_seconds * 3
        while True:
            event: Any = None
            with anyio.move_on_after(idle):
                event = await websocket.receive()
            if event is None:
                await _close(websocket, CLOSE_POLICY, "idle", "no heartbeat")
                return
            if event["type"] == "websocket.disconnect":
                return
            raw = event.get("text")
            if raw is None:
                raw_bytes = event.get("bytes") or b""
                size = len(raw_bytes)
            else:
                size = len(raw.encode())
            if size > settings.max_frame_bytes:
                await _close(
                    websocket,
                    CLOSE_TOO_BIG,
                    "frame_too_big",
                    f"frames are at most {settings.max_frame_bytes} bytes",
                )
                return
            connection.last_seen = anyio.current_time()
            try:
                frame = CLIENT_FRAME.validate_json(raw if raw is not None else raw_bytes)
            except ValidationError as exc:
                bad += 1
                connection.push({"type": "error", "code": "bad_frame", "detail": first_error(exc)})
                if bad >= MAX_BAD_FRAMES:
                    await _close(websocket, CLOSE_POLICY, "bad_frames", "too many malformed frames")
                    return
                continue
            wait = frames.take()
            if wait > 0 and not isinstance(frame, MessageFrame):
                connection.push({"type": "error", "code": "rate_limited", "detail": "too many frames"})
                continue
            visitor = connection.visitor
            try:
                if isinstance(frame, MessageFrame):
                    # A refused message is named by its client id: the widget resends it later.
                    if wait == 0:
                        wait = messages.take()
                    if wait > 0:
                        connection.push(
                            {
                                "type": "error",
                                "code": "rate_limited",
                                "client_id": frame.client_id,
                                "retry_after": round(wait, 3),
                                "detail": "too many messages",
                            }
                        )
                        continue
                    await _message(websocket, connection, frame)
                elif isinstance(frame, TypingFrame):
                    now = anyio.current_time()
                    if frame.on != connection.typing and (
                        not frame.on or now - typing_at >= settings.typing_interval_seconds
                    ):
                        typing_at = now
                        await channel.accept_typing(connection, frame.on)
                elif isinstance(frame, ReadFrame):
                    await channel.accept_read(visitor, frame.id)
                elif isinstance(frame, DeliveredFrame):
                    if frame.provider_id in connection.pushed_ids:
                        connection.pushed_ids.discard(frame.provider_id)
                        await channel.accept_status(frame.provider_id, DeliveryStatus.DELIVERED)
                        if channel.rechecks_receipts:
                            tg.start_soon(channel.recheck_delivered, visitor, frame.provider_id)
                elif isinstance(frame, PingFrame):
                    connection.push({"type": "pong", "agents_available": channel.agents_available})
                elif isinstance(frame, ResyncFrame):
                    await _push_history(connection, frame.since)
                elif isinstance(frame, OfflineEmailFrame):
                    connection.push(
                        await _api.offline_email(channel, visitor, frame, base_url(channel, websocket))
                    )
                elif isinstance(frame, CloseFrame):
                    await channel.close_session(visitor.session_id)
            except Refused as exc:
                connection.push(
                    {
                        "type": "error",
                        "code": exc.code,
                        "detail": exc.detail,
                        "client_id": getattr(frame, "client_id", None),
                    }
                )

    async def _message(websocket: WebSocket, connection: Connection, frame: MessageFrame) -> None:
        visitor = connection.visitor
        ack = await _api.accept(
            channel, visitor, frame.client_id, frame.text, frame.upload, base_url(channel, websocket)
        )
        connection.push(ack)
        # The visitor's other tabs show it too.
        channel.push_to_session(
            connection.visitor.session_id,
            {
                "type": "message",
                "id": ack["id"],
                "part": None,
                "from": "visitor",
                "client_id": frame.client_id,
                "text": frame.text,
                "attachments": ack["attachments"],
                "status": "received",
            },
            skip=connection,
        )

    async def api(request: Request) -> Response:
        status, body = await _api.call(
            channel,
            request.method,
            request.url.path.removeprefix(request.scope.get("root_path", "")),
            request.headers,
            request.query_params,
            await request.body(),
            base_url(channel, request),
        )
        return JSONResponse(body, status_code=status)

    async def api_upload(request: Request) -> Response:
        try:
            visitor = await _api.visitor_of(channel, request.headers, request.query_params, {})
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in settings.upload_types:
                raise Refused("type_not_allowed", f"{content_type or 'unknown type'} cannot be uploaded", 415)
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > settings.upload_max_bytes:
                raise Refused("too_big", f"uploads are at most {settings.upload_max_bytes} bytes", 413)
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.upload_max_bytes:
                    raise Refused("too_big", f"uploads are at most {settings.upload_max_bytes} bytes", 413)
                chunks.append(chunk)
            data = b"".join(chunks)
            if not data:
                raise Refused("empty", "the upload is empty")
            if not looks_like(content_type, data):
                raise Refused("type_mismatch", f"the file is not a {content_type}", 415)
        except Refused as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        upload_id = f"upl_{secrets.token_urlsafe(16)}"
        filename = safe_filename(request.query_params.get("filename") or request.headers.get("x-filename"))
        await channel.uploads.put(
            StoredUpload(upload_id, visitor.visitor_id, content_type, filename, size), data
        )
        return JSONResponse(
            {
                "upload": issue_upload_token(channel._secret, visitor.visitor_id, upload_id),
                "url": f"{base_url(channel, request)}/uploads/{upload_id}",
                "content_type": content_type,
                "filename": filename,
                "size": size,
            },
            status_code=201,
        )

    async def download(request: Request) -> Response:
        found = await channel.uploads.get(request.path_params["upload_id"])
        if found is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        meta, data = found
        inline = meta.content_type.startswith("image/")
        return Response(
            data,
            media_type=meta.content_type,
            headers={
                "content-disposition": f'{"inline" if inline else "attachment"}; filename="{meta.filename}"',
                "x-content-type-options": "nosniff",
                "content-security-policy": "default-src 'none'; sandbox",
                "cache-control": "private, max-age=3600",
            },
        )

    async def widget(request: Request) -> Response:
        return Response(
            widget_source,
            media_type="text/javascript; charset=utf-8",
            headers={"cache-control": "public, max-age=300", "x-content-type-options": "nosniff"},
        )

    origins = list(settings.allowed_origins)
    return Starlette(
        routes=[
            WebSocketRoute("/ws", socket),
            Route("/api/session", api, methods=["POST"]),
            Route("/api/messages", api, methods=["GET", "POST"]),
            Route("/api/receipts", api, methods=["POST"]),
            Route("/api/offline-email", api, methods=["POST"]),
            Route("/api/uploads", api_upload, methods=["POST"]),
            Route("/uploads/{upload_id}", download, methods=["GET"], name="upload"),
            Route("/widget.js", widget, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "x-filename"],
                max_age=600,
            )
        ]
        if origins
        else [],
    )


async def _close(websocket: WebSocket, code: int, error: str, detail: str) -> None:
    try:
        await websocket.send_text(json.dumps({"type": "error", "code": error, "detail": detail}))
        await websocket.close(code=code)
    except (RuntimeError, WebSocketDisconnect, OSError):
        # Already closed by the other side.
        pass
