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
from urllib.parse import urlsplit

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ._channel import Connection, LivechatChannel, TokenBucket, Visitor, normalize_email
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
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_OVERLOADED = 1013
CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_SITE = 4404


class _Refused(Exception):
    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


def origin_allowed(channel: LivechatChannel, connection: HTTPConnection) -> bool:
    """Browsers always send Origin; a page on another site must be listed to talk to us.

    Without an Origin header (a server-side client) the request is allowed: Origin protects
    visitors' browsers, it does not authenticate anyone (the tokens do).
    """
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    allowed = channel.settings.allowed_origins
    if "*" in allowed or origin.lower() in allowed:
        return True
    host = connection.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


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
        if not origin_allowed(channel, websocket):
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
                tg.start_soon(_write, websocket, connection)
                await _read(websocket, connection)
                tg.cancel_scope.cancel()
        finally:
            channel.unregister(connection)
            connection.outbox.close()
            if connection.typing:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    await channel.accept_typing(connection, False)
        if connection.overflowed:
            await _close(websocket, CLOSE_OVERLOADED, "too_slow", "resync from your last id")

    async def _push_history(connection: Connection, since: str | None) -> None:
        messages = await channel.history(connection.visitor, since)
        frames = [stored_message_frame(m, connection.visitor.visitor_id) for m in messages]
        for frame, message in zip(frames, messages, strict=True):
            frame["provider_ids"] = list(message.provider_ids)
            connection.pushed_ids.update(message.provider_ids)
        connection.push({"type": "history", "since": since, "messages": frames})

    async def _write(websocket: WebSocket, connection: Connection) -> None:
        async with connection.inbox:
            async for text in connection.inbox:
                await websocket.send_text(text)
        if connection.overflowed:
            await _close(websocket, CLOSE_OVERLOADED, "too_slow", "resync from your last id")

    async def _read(websocket: WebSocket, connection: Connection) -> None:
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
            if frames.take() > 0:
                connection.push({"type": "error", "code": "rate_limited", "detail": "too many frames"})
                continue
            try:
                frame = CLIENT_FRAME.validate_json(raw if raw is not None else raw_bytes)
            except ValidationError as exc:
                bad += 1
                connection.push({"type": "error", "code": "bad_frame", "detail": _first_error(exc)})
                if bad >= MAX_BAD_FRAMES:
                    await _close(websocket, CLOSE_POLICY, "bad_frames", "too many malformed frames")
                    return
                continue
            visitor = connection.visitor
            try:
                if isinstance(frame, MessageFrame):
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
                        await channel.accept_delivered(frame.provider_id)
                elif isinstance(frame, PingFrame):
                    connection.push({"type": "pong", "agents_available": channel.agents_available})
                elif isinstance(frame, ResyncFrame):
                    await _push_history(connection, frame.since)
                elif isinstance(frame, OfflineEmailFrame):
                    connection.push(await _offline_email(websocket, visitor, frame))
                elif isinstance(frame, CloseFrame):
                    await channel.close_session(visitor.session_id)
            except _Refused as exc:
                connection.push(
                    {
                        "type": "error",
                        "code": exc.code,
                        "detail": exc.detail,
                        "client_id": getattr(frame, "client_id", None),
                    }
                )

    async def _message(websocket: WebSocket, connection: Connection, frame: MessageFrame) -> None:
        ack = await _accept(websocket, connection.visitor, frame.client_id, frame.text, frame.upload)
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
                "attachments": [],
                "status": "received",
            },
            skip=connection,
        )

    async def _accept(
        conn: HTTPConnection, visitor: Visitor, client_id: str, text: str, upload: str | None
    ) -> dict[str, Any]:
        if len(text) > settings.max_text_chars:
            raise _Refused("too_long", f"messages are at most {settings.max_text_chars} characters", 413)
        if not text.strip() and not upload:
            raise _Refused("empty", "a message needs text or an upload")
        try:
            return await channel.accept_message(visitor, client_id, text, upload, base_url(channel, conn))
        except TokenError as exc:
            raise _Refused("bad_upload", str(exc)) from exc

    async def _offline_email(
        conn: HTTPConnection, visitor: Visitor, frame: OfflineEmailFrame
    ) -> dict[str, Any]:
        email = normalize_email(frame.email)
        if email is None:
            raise _Refused("bad_email", "that does not look like an email address")
        if frame.text.strip():
            await _accept(conn, visitor, frame.client_id or secrets.token_hex(8), frame.text, None)
        conversation_id = await channel.conversation_of(visitor)
        if conversation_id is None:
            raise _Refused("nothing_to_continue", "write a message first")
        if channel.on_offline_email is None:
            raise _Refused("email_unavailable", "this site does not continue chats on email")
        await channel.on_offline_email(conversation_id, email)
        return {"type": "offline_email_ok", "email": email, "conversation": conversation_id}

    # ------------------------------------------------------------------ HTTP fallback

    async def _http_visitor(request: Request, body: dict[str, Any]) -> Visitor:
        if not origin_allowed(channel, request):
            raise _Refused("origin", "origin not allowed", 403)
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if token is None:
            raise _Refused("unauthorized", "a Bearer visitor token is required", 401)
        session = body.get("session") or request.query_params.get("session")
        try:
            visitor = await channel.start(
                token,
                session if isinstance(session, str) else None,
                identity=_opt_str(body.get("identity")),
                identity_hash=_opt_str(body.get("identity_hash")),
            )
        except TokenError as exc:
            raise _Refused("unauthorized", str(exc), 401) from exc
        return visitor

    async def _json_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > settings.max_frame_bytes:
            raise _Refused("too_big", f"bodies are at most {settings.max_frame_bytes} bytes", 413)
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise _Refused("bad_json", "the body must be a JSON object") from exc
        if not isinstance(body, dict):
            raise _Refused("bad_json", "the body must be a JSON object")
        return body

    async def api_session(request: Request) -> Response:
        try:
            if not origin_allowed(channel, request):
                raise _Refused("origin", "origin not allowed", 403)
            body = await _json_body(request)
            if body.get("site") != settings.site_id:
                raise _Refused("unknown_site", "unknown site", 404)
            try:
                visitor = await channel.start(
                    _opt_str(body.get("token")),
                    _opt_str(body.get("session")),
                    identity=_opt_str(body.get("identity")),
                    identity_hash=_opt_str(body.get("identity_hash")),
                )
            except TokenError as exc:
                raise _Refused("unauthorized", str(exc), 401) from exc
        except _Refused as exc:
            return _error(exc)
        return JSONResponse(
            {
                "visitor_id": visitor.visitor_id,
                "token": visitor.token,
                "session": visitor.session_token,
                "agents_available": channel.agents_available,
            }
        )

    async def api_send(request: Request) -> Response:
        try:
            body = await _json_body(request)
            visitor = await _http_visitor(request, body)
            try:
                frame = MessageFrame.model_validate({**body, "type": "message"})
            except ValidationError as exc:
                raise _Refused("bad_frame", _first_error(exc)) from exc
            ack = await _accept(request, visitor, frame.client_id, frame.text, frame.upload)
        except _Refused as exc:
            return _error(exc)
        ack["session"] = visitor.session_token
        return JSONResponse(ack)

    async def api_history(request: Request) -> Response:
        try:
            visitor = await _http_visitor(request, {})
        except _Refused as exc:
            return _error(exc)
        since = request.query_params.get("since")
        messages = await channel.history(visitor, since)
        return JSONResponse(
            {
                "session": visitor.session_token,
                "messages": [stored_message_frame(m, visitor.visitor_id) for m in messages],
            }
        )

    async def api_upload(request: Request) -> Response:
        try:
            visitor = await _http_visitor(request, {})
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in settings.upload_types:
                raise _Refused(
                    "type_not_allowed", f"{content_type or 'unknown type'} cannot be uploaded", 415
                )
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > settings.upload_max_bytes:
                raise _Refused("too_big", f"uploads are at most {settings.upload_max_bytes} bytes", 413)
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.upload_max_bytes:
                    raise _Refused("too_big", f"uploads are at most {settings.upload_max_bytes} bytes", 413)
                chunks.append(chunk)
            data = b"".join(chunks)
            if not data:
                raise _Refused("empty", "the upload is empty")
            if not looks_like(content_type, data):
                raise _Refused("type_mismatch", f"the file is not a {content_type}", 415)
        except _Refused as exc:
            return _error(exc)
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
            Route("/api/session", api_session, methods=["POST"]),
            Route("/api/messages", api_send, methods=["POST"]),
            Route("/api/messages", api_history, methods=["GET"]),
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


def _error(exc: _Refused) -> JSONResponse:
    return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid"))


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
