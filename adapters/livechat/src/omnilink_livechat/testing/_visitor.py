"""A scripted chat visitor: drives the live-chat socket like the widget does, without a browser."""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import anyio
import sniffio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from omnilink import BackendUnsupportedError


class SocketClosed(Exception):
    """The server closed the socket; ``code`` is the WebSocket close code."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"socket closed with code {code} {reason}".strip())
        self.code = code
        self.reason = reason


@asynccontextmanager
async def _task_group() -> AsyncIterator[TaskGroup]:
    """A task group that raises a lone error as itself, not wrapped in an ExceptionGroup."""
    try:
        async with anyio.create_task_group() as tg:
            yield tg
    except BaseExceptionGroup as group:
        errors = [e for e in group.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
        if len(errors) == 1:
            raise errors[0] from None
        raise


class _Socket(Protocol):
    async def send_text(self, text: str) -> None: ...
    async def receive_text(self) -> str: ...
    async def close(self) -> None: ...


class _ASGISocket:
    """A WebSocket to an ASGI app in this event loop (no server, no thread)."""

    def __init__(
        self,
        to_app: MemoryObjectSendStream[dict[str, Any]],
        from_app: MemoryObjectReceiveStream[dict[str, Any]],
    ) -> None:
        self._to_app = to_app
        self._from_app = from_app
        self.closed: SocketClosed | None = None

    async def send_text(self, text: str) -> None:
        if self.closed is not None:
            raise self.closed
        await self._to_app.send({"type": "websocket.receive", "text": text})

    async def receive_text(self) -> str:
        while True:
            if self.closed is not None:
                raise self.closed
            try:
                message = await self._from_app.receive()
            except anyio.EndOfStream:
                self.closed = SocketClosed(1006, "app ended")
                continue
            if message["type"] == "websocket.send":
                text = message.get("text")
                return text if text is not None else bytes(message.get("bytes") or b"").decode()
            if message["type"] == "websocket.close":
                self.closed = SocketClosed(int(message.get("code", 1000)), str(message.get("reason") or ""))

    async def close(self) -> None:
        if self.closed is None:
            self.closed = SocketClosed(1000, "closed by visitor")
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self._to_app.send({"type": "websocket.disconnect", "code": 1000})


@asynccontextmanager
async def _asgi_socket(app: Any, path: str, origin: str | None) -> AsyncIterator[_ASGISocket]:
    to_app_send, to_app_receive = anyio.create_memory_object_stream[dict[str, Any]](64)
    from_app_send, from_app_receive = anyio.create_memory_object_stream[dict[str, Any]](1024)
    headers = [(b"host", b"testserver")]
    if origin:
        headers.append((b"origin", origin.encode()))
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": {},
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        try:
            return await to_app_receive.receive()
        except anyio.EndOfStream:
            return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await from_app_send.send(message)

    async def serve() -> None:
        async with from_app_send:
            try:
                await app(scope, receive, send)
            except Exception as exc:  # an app error closes the socket like a server would
                await send({"type": "websocket.close", "code": 1011, "reason": repr(exc)[:120]})

    async with _task_group() as tg:
        tg.start_soon(serve)
        await to_app_send.send({"type": "websocket.connect"})
        first = await from_app_receive.receive()
        if first["type"] != "websocket.accept":
            tg.cancel_scope.cancel()
            raise SocketClosed(int(first.get("code", 1000)), "refused before accept")
        socket = _ASGISocket(to_app_send, from_app_receive)
        try:
            yield socket
        finally:
            await socket.close()
            with anyio.move_on_after(5):
                await to_app_send.aclose()
                async for _ in from_app_receive:
                    pass
            tg.cancel_scope.cancel()


class _RealSocket:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def send_text(self, text: str) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._connection.send(text)
        except ConnectionClosed as exc:
            raise SocketClosed(exc.rcvd.code if exc.rcvd else 1006) from exc

    async def receive_text(self) -> str:
        from websockets.exceptions import ConnectionClosed

        try:
            data = await self._connection.recv()
        except ConnectionClosed as exc:
            raise SocketClosed(exc.rcvd.code if exc.rcvd else 1006) from exc
        return data if isinstance(data, str) else data.decode()

    async def close(self) -> None:
        await self._connection.close()


@asynccontextmanager
async def _real_socket(url: str, origin: str | None) -> AsyncIterator[_RealSocket]:
    if sniffio.current_async_library() != "asyncio":
        raise BackendUnsupportedError("the real-server visitor uses the websockets package: asyncio only")
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    try:
        connection = await connect(url, origin=origin, open_timeout=10)  # type: ignore[arg-type]
    except InvalidStatus as exc:
        raise SocketClosed(exc.response.status_code, "refused before accept") from exc
    try:
        yield _RealSocket(connection)
    finally:
        await connection.close()


class ScriptedVisitor:
    """One chat visitor, scripted: say things, wait for the agent, type, read, leave an email.

    ```python
    async with ScriptedVisitor.in_process(hub.asgi_app(), site="shop") as visitor:
        await visitor.say("Where is my order?")      # returns the server's message id
        reply = await visitor.agent_message()          # an agent reply pushed to the socket
    ```

    Keeps what the server told it (``visitor_id``, ``token``, ``session``, ``last_id``) so a
    second visitor object can reconnect as the same person (``token=``, ``session=``,
    ``since=``). Agent messages are acknowledged as delivered when they arrive, as the widget
    does (``auto_ack=False`` to leave them unacknowledged).
    """

    def __init__(
        self,
        socket: _Socket,
        *,
        auto_ack: bool = True,
    ) -> None:
        self._socket = socket
        self.auto_ack = auto_ack
        self.visitor_id: str | None = None
        self.token: str | None = None
        self.session: str | None = None
        self.agents_available: bool | None = None
        self.last_id: str | None = None
        self.frames: list[dict[str, Any]] = []
        """Every frame received, in order."""
        self.closed: SocketClosed | None = None
        self._send, self._receive = anyio.create_memory_object_stream[dict[str, Any]](10_000)
        self._backlog: list[dict[str, Any]] = []
        self._counter = itertools.count(1)
        self._prefix = secrets.token_hex(4)

    # ------------------------------------------------------------------ connecting

    @classmethod
    @asynccontextmanager
    async def in_process(
        cls,
        app: Any,
        site: str,
        *,
        path: str = "/channels/livechat/ws",
        origin: str | None = None,
        token: str | None = None,
        session: str | None = None,
        since: str | None = None,
        identity: str | None = None,
        identity_hash: str | None = None,
        name: str | None = None,
        auto_ack: bool = True,
    ) -> AsyncIterator[ScriptedVisitor]:
        """A visitor talking to an ASGI app (the Hub's or the channel's) in this event loop."""
        async with (
            _asgi_socket(app, path, origin) as socket,
            cls._run(socket, site, token, session, since, identity, identity_hash, name, auto_ack) as v,
        ):
            yield v

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        site: str,
        *,
        origin: str | None = None,
        token: str | None = None,
        session: str | None = None,
        since: str | None = None,
        identity: str | None = None,
        identity_hash: str | None = None,
        name: str | None = None,
        auto_ack: bool = True,
    ) -> AsyncIterator[ScriptedVisitor]:
        """A visitor on a real server: ``url`` like ``ws://127.0.0.1:8000/channels/livechat/ws``.

        Uses the ``websockets`` package, which runs on asyncio only.
        """
        async with (
            _real_socket(url, origin) as socket,
            cls._run(socket, site, token, session, since, identity, identity_hash, name, auto_ack) as v,
        ):
            yield v

    @classmethod
    @asynccontextmanager
    async def _run(
        cls,
        socket: _Socket,
        site: str,
        token: str | None,
        session: str | None,
        since: str | None,
        identity: str | None,
        identity_hash: str | None,
        name: str | None,
        auto_ack: bool,
    ) -> AsyncIterator[ScriptedVisitor]:
        visitor = cls(socket, auto_ack=auto_ack)
        hello = {
            "type": "hello",
            "site": site,
            "token": token,
            "session": session,
            "since": since,
            "identity": identity,
            "identity_hash": identity_hash,
            "name": name,
        }
        await socket.send_text(json.dumps(hello))
        async with _task_group() as tg:
            tg.start_soon(visitor._pump)
            try:
                await visitor.next_frame("welcome", timeout=10)
                yield visitor
            finally:
                await socket.close()
                tg.cancel_scope.cancel()

    async def _pump(self) -> None:
        try:
            while True:
                text = await self._socket.receive_text()
                frame = json.loads(text)
                self.frames.append(frame)
                await self._observe(frame)
                await self._send.send(frame)
        except SocketClosed as exc:
            self.closed = exc
        finally:
            self._send.close()

    async def _observe(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "welcome":
            self.visitor_id = frame["visitor_id"]
            self.token = frame["token"]
            self.session = frame["session"]
            self.agents_available = frame["agents_available"]
        elif kind == "agents":
            self.agents_available = frame["available"]
        elif kind == "pong":
            self.agents_available = frame["agents_available"]
        elif kind == "history":
            for message in frame["messages"]:
                self.last_id = message["id"]
                if self.auto_ack and message["from"] == "agent" and message["status"] == "sent":
                    for provider_id in message.get("provider_ids", ()):
                        await self._frame({"type": "delivered", "provider_id": provider_id})
        elif kind == "message":
            self.last_id = frame["id"]
            if self.auto_ack and frame.get("from") == "agent" and frame.get("provider_id"):
                await self._frame({"type": "delivered", "provider_id": frame["provider_id"]})
        elif kind == "ack":
            self.last_id = frame["id"]

    async def _frame(self, frame: dict[str, Any]) -> None:
        try:
            await self._socket.send_text(json.dumps(frame))
        except SocketClosed as exc:
            self.closed = exc

    # ------------------------------------------------------------------ receiving

    async def next_frame(
        self,
        kind: str | tuple[str, ...] | None = None,
        *,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The next frame of ``kind`` (any kind when None) for which ``where`` holds.

        Frames skipped over are kept for later calls. Raises TimeoutError after ``timeout``
        seconds, SocketClosed when the socket closed first.
        """
        kinds = (kind,) if isinstance(kind, str) else kind

        def wanted(frame: dict[str, Any]) -> bool:
            return (kinds is None or frame.get("type") in kinds) and (where is None or where(frame))

        for index, frame in enumerate(self._backlog):
            if wanted(frame):
                return self._backlog.pop(index)
        with anyio.fail_after(timeout):
            while True:
                try:
                    frame = await self._receive.receive()
                except anyio.EndOfStream:
                    raise self.closed or SocketClosed(1006) from None
                if wanted(frame):
                    return frame
                self._backlog.append(frame)

    async def agent_message(self, *, timeout: float = 5.0) -> dict[str, Any]:
        """The next agent message pushed live (``text``, ``id``, ``attachments`` …)."""
        return await self.next_frame("message", where=lambda f: f.get("from") == "agent", timeout=timeout)

    async def history(self, *, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The messages of the next history frame (the server sends one after hello and resync)."""
        frame = await self.next_frame("history", timeout=timeout)
        return list(frame["messages"])

    # ------------------------------------------------------------------ acting

    def new_client_id(self) -> str:
        return f"c{self._prefix}{next(self._counter)}"

    async def send_message(
        self, text: str, *, client_id: str | None = None, upload: str | None = None
    ) -> str:
        """Send a message without waiting for its ack; returns the client id."""
        client_id = client_id or self.new_client_id()
        frame: dict[str, Any] = {"type": "message", "client_id": client_id, "text": text}
        if upload:
            frame["upload"] = upload
        await self._socket.send_text(json.dumps(frame))
        return client_id

    async def say(
        self,
        text: str,
        *,
        client_id: str | None = None,
        upload: str | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Send a message and wait for the server's ack; returns the stored message id.

        Raises RuntimeError with the server's error code when it refused the message.
        """
        client_id = await self.send_message(text, client_id=client_id, upload=upload)
        frame = await self.next_frame(
            ("ack", "error"), where=lambda f: f.get("client_id") == client_id, timeout=timeout
        )
        if frame["type"] == "error":
            raise RuntimeError(f"{frame['code']}: {frame.get('detail', '')}")
        return str(frame["id"])

    async def typing(self, on: bool = True) -> None:
        await self._socket.send_text(json.dumps({"type": "typing", "on": on}))

    async def read(self, message_id: str) -> None:
        """Tell the server the visitor has seen every message up to ``message_id``."""
        await self._socket.send_text(json.dumps({"type": "read", "id": message_id}))

    async def ping(self) -> dict[str, Any]:
        await self._socket.send_text(json.dumps({"type": "ping"}))
        return await self.next_frame("pong")

    async def resync(self, since: str | None = None) -> list[dict[str, Any]]:
        await self._socket.send_text(json.dumps({"type": "resync", "since": since}))
        return await self.history()

    async def leave_email(self, address: str, text: str = "") -> dict[str, Any]:
        """Fill in the offline form; returns the server's answer (``offline_email_ok`` or an error)."""
        frame: dict[str, Any] = {"type": "offline_email", "email": address, "text": text}
        if text:
            frame["client_id"] = self.new_client_id()
        await self._socket.send_text(json.dumps(frame))
        return await self.next_frame(("offline_email_ok", "error"))

    async def end_session(self) -> None:
        await self._socket.send_text(json.dumps({"type": "close_session"}))

    async def send_raw(self, text: str) -> None:
        """Send any text frame (for tests of malformed or oversized frames)."""
        await self._socket.send_text(text)


__all__ = ["ScriptedVisitor", "SocketClosed"]
