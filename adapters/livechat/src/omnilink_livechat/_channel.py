"""The live-chat channel: visitors' sockets in, agent replies out, sessions and presence.

The channel keeps only ephemeral state (which sockets are connected to which chat session);
every message goes through the Hub, which stores it before it is acknowledged to the visitor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from omnilink import (
    AddressError,
    AuthorKind,
    Capabilities,
    Channel,
    ChannelContext,
    ChoiceCapabilities,
    DeliveryStatus,
    Direction,
    Handle,
    InboundDelivery,
    InboundMessage,
    MediaCapabilities,
    Message,
    OutboundMessage,
    Part,
    SendResult,
    TextPart,
    Typing,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
    plan,
)

from ._config import LivechatConfig
from ._frames import attachments, plain_text
from ._tokens import (
    TokenError,
    issue_session_token,
    issue_visitor_token,
    new_session_id,
    new_visitor_id,
    verify_identity,
    verify_session_token,
    verify_visitor_token,
)
from ._uploads import UploadStore

CAPABILITIES = Capabilities(
    text_max=4000,
    markup="none",
    media=MediaCapabilities(
        max_count=1,
        types=frozenset({"image", "file", "audio", "video"}),
        max_bytes=25 * 1024 * 1024,
        with_text=True,
    ),
    quick_replies=ChoiceCapabilities(max_count=0),
    buttons=ChoiceCapabilities(max_count=0),
    typing=True,
    read_receipts=True,
    delivery_receipts=True,
    can_start_conversation=False,
    thread_by_key=True,
)
"""Plain text up to 4,000 characters, one attachment per message, typing and read receipts.
A visitor must write first: the channel cannot reach someone who never opened the widget."""

RECEIPT_RECHECKS = (0.5, 2.0)
"""Seconds after a visitor's delivery receipt to check that the Hub applied it."""

_VISITOR = re.compile(r"^vis_[A-Za-z0-9_-]{8,64}$")
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def normalize_email(address: str) -> str | None:
    """The lower-cased address when it looks like an email address, else None."""
    address = address.strip()
    return address.lower() if _EMAIL.match(address) else None


class TokenBucket:
    """A rate limit: ``rate`` per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = anyio.current_time()

    def take(self) -> float:
        """0 when allowed (and counted), else the seconds to wait before the next is allowed."""
        now = anyio.current_time()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


@dataclass
class Visitor:
    """Who is on the other end of a socket or an HTTP call, once authenticated."""

    visitor_id: str
    token: str
    session_id: str
    session_token: str
    verified_handles: tuple[Handle, ...] = ()
    name: str | None = None
    conversation_id: str | None = None


@dataclass(eq=False)
class Connection:
    """One visitor socket: frames queued for it, and what it may acknowledge."""

    visitor: Visitor
    buffer: int
    pushed_ids: set[str] = field(default_factory=set)
    last_seen: float = field(default_factory=anyio.current_time)
    typing: bool = False
    overflowed: bool = False
    disconnected: bool = False
    outbox: MemoryObjectSendStream[str] = field(init=False)
    inbox: MemoryObjectReceiveStream[str] = field(init=False)

    def __post_init__(self) -> None:
        self.outbox, self.inbox = anyio.create_memory_object_stream[str](self.buffer)

    def push(self, frame: dict[str, Any]) -> bool:
        """Queue a frame without waiting; a socket too far behind is cut off (it will resync)."""
        if frame.get("type") == "message" and frame.get("provider_id"):
            self.pushed_ids.add(str(frame["provider_id"]))
            if len(self.pushed_ids) > 4 * self.buffer:
                self.pushed_ids.pop()
        try:
            self.outbox.send_nowait(json.dumps(frame, separators=(",", ":")))
        except anyio.WouldBlock:
            self.overflowed = True
            self.outbox.close()
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def disconnect(self) -> None:
        """Close the socket from the server side once queued frames are written."""
        self.disconnected = True
        self.outbox.close()


@dataclass(frozen=True)
class OfflineEmail:
    """A visitor left an email address because no agent was available."""

    conversation_id: str
    address: str
    """Lower-cased; typed by the visitor, not verified."""
    session_id: str
    visitor_id: str
    transcript: str
    """The chat so far as plain text, one line per message, for the first email."""


OfflineEmailHandler = Callable[[OfflineEmail], Awaitable[object]]
"""Set by the helpdesk: typically ``hub.continue_on(e.conversation_id, "email", e.address)``
followed by a reply on email that quotes ``e.transcript``."""


class LivechatChannel(Channel):
    """The ``livechat`` channel. Mount ``asgi_app()`` (the Hub does, under /channels/livechat)."""

    thread_history = 0  # sends never refer to earlier messages

    capabilities = CAPABILITIES

    def __init__(self, config: LivechatConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.settings = config
        self.capabilities = CAPABILITIES.model_copy(update={"text_max": config.max_text_chars})
        self.uploads = UploadStore(config.upload_dir)
        self.on_offline_email: OfflineEmailHandler | None = None
        """Set by the helpdesk to continue a conversation on email when no agent is available."""
        self._agents_available = config.agents_available
        self._sessions: dict[str, set[Connection]] = {}
        self._secret = config.secret.get_secret_value()
        self._notifier: Any = None
        if config.notify_dsn:
            from ._notify import Notifier

            self._notifier = Notifier(self, config.notify_dsn, config.notify_channel)

    # ------------------------------------------------------------------ Hub contract

    @property
    def has_background_work(self) -> bool:
        return self._notifier is not None

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        if self._notifier is None:
            task_status.started()
            return
        await self._notifier.listen(task_status=task_status)

    def normalize_address(self, address: str) -> str:
        if not _VISITOR.match(address):
            raise AddressError(f"not a live-chat visitor id: {address!r}", channel=self.name, address=address)
        return address

    async def send(self, outbound: OutboundMessage) -> SendResult:
        """Push an agent reply to the visitor's live sockets (on every process sharing the store).

        A visitor who is offline gets it on their next resync: the Hub stored it already.
        The result is SENT; the widget's acknowledgement later moves it to DELIVERED.
        """
        frame = self._outbound_frame(outbound)
        live = self.push_to_session(outbound.thread_key, frame)
        if self._notifier is not None:
            await self._notifier.notify_message(outbound)
        return SendResult(
            provider_message_id=outbound.idempotency_key,
            status=DeliveryStatus.SENT,
            details={"live_sockets": str(live)},
        )

    async def reconcile(self, outbound: OutboundMessage) -> SendResult | None:
        # A push carries the message id: pushing it again is harmless (the widget dedupes).
        return None

    async def send_typing(self, account: str, thread_key: str, on: bool) -> None:
        self.push_to_session(thread_key, {"type": "typing", "from": "agent", "on": on})
        if self._notifier is not None:
            await self._notifier.notify_frame(thread_key, {"type": "typing", "from": "agent", "on": on})

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        """The HTTP visitor API through the Hub's generic route ``/webhooks/livechat/api/...``.

        Same answers as ``asgi_app()``'s ``/api/...`` routes. Messages are submitted to the
        Hub before answering (the answer carries the stored id), so no items are returned.
        """
        from . import _api

        base = f"{(self.context.public_url or '').rstrip('/')}/channels/{self.name}"
        status, body = await _api.call(
            self, request.method, request.path, request.headers, request.query, request.body, base
        )
        return WebhookResult(WebhookResponse.json(json.dumps(body), status))

    def asgi_app(self) -> Any:
        from ._app import build_app

        return build_app(self)

    async def aclose(self) -> None:
        for session_id in list(self._sessions):
            self.disconnect_session(session_id)
        if self._notifier is not None:
            await self._notifier.aclose()

    # ------------------------------------------------------------------ helpdesk-facing

    @property
    def agents_available(self) -> bool:
        return self._agents_available

    def set_agents_available(self, available: bool) -> None:
        """Tell every widget whether agents answer now (when not, it offers the email form).

        With ``notify_dsn``, every process sharing the database follows (announced in the
        background, typically within milliseconds).
        """
        self.apply_agents_available(available)
        if self._notifier is not None:
            self._notifier.announce({"k": "a", "v": available})

    def apply_agents_available(self, available: bool) -> None:
        """Set availability in this process only and push it to its widgets."""
        self._agents_available = available
        for session_id in list(self._sessions):
            self.push_to_session(session_id, {"type": "agents", "available": available})

    def is_online(self, session_id: str) -> bool:
        """Whether a visitor socket of this chat session is connected to this process."""
        return bool(self._sessions.get(session_id))

    def disconnect_session(self, session_id: str) -> int:
        """Close the session's sockets (the widget reconnects and resyncs); returns how many."""
        connections = list(self._sessions.get(session_id, ()))
        for connection in connections:
            connection.disconnect()
        return len(connections)

    def online_sessions(self) -> list[str]:
        """Chat sessions with a visitor connected to this process."""
        return [session for session, connections in self._sessions.items() if connections]

    async def mark_read(self, message: Message) -> None:
        """An agent read the visitor's messages up to ``message``: the widget shows "Read"."""
        await self.mark_read_by_agent(message.thread_key, message.id)

    async def mark_read_by_agent(self, session_id: str, message_id: str) -> None:
        """Show the visitor that an agent read their messages up to ``message_id``."""
        self.push_to_session(session_id, {"type": "read", "from": "agent", "id": message_id})

    async def close_session(self, session_id: str) -> None:
        """End a chat session: its token stops working and the widget's next message opens a new one."""
        await self.context.set_state(f"closed:{session_id}", "1")
        self.push_to_session(session_id, {"type": "session_closed"})

    # ------------------------------------------------------------------ sockets

    def register(self, connection: Connection) -> None:
        self._sessions.setdefault(connection.visitor.session_id, set()).add(connection)

    def unregister(self, connection: Connection) -> None:
        connections = self._sessions.get(connection.visitor.session_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._sessions[connection.visitor.session_id]

    def push_to_session(
        self, session_id: str, frame: dict[str, Any], *, skip: Connection | None = None
    ) -> int:
        """Queue a frame to every socket of a session (but ``skip``); returns how many took it."""
        taken = 0
        for connection in list(self._sessions.get(session_id, ())):
            if connection is not skip and connection.push(frame):
                taken += 1
        return taken

    def connection_count(self) -> int:
        return sum(len(connections) for connections in self._sessions.values())

    # ------------------------------------------------------------------ visitors

    def authenticate(self, token: str | None, *, name: str | None = None) -> tuple[str, str]:
        """(visitor id, token): the token's visitor, or a new anonymous visitor when None.

        Raises TokenError for a token that is forged, expired or malformed.
        """
        now = self.context.now()
        if token is None:
            visitor_id = new_visitor_id()
            return visitor_id, issue_visitor_token(self._secret, visitor_id, now)
        from datetime import timedelta

        claims = verify_visitor_token(
            self._secret, token, now=now, max_age=timedelta(days=self.settings.token_max_age_days)
        )
        return claims.visitor_id, token

    async def open_session(self, visitor_id: str, session_token: str | None) -> tuple[str, str]:
        """(session id, session token): the visitor's session if still open, else a new one."""
        if session_token:
            try:
                session_id = verify_session_token(self._secret, session_token, visitor_id=visitor_id)
            except TokenError:
                session_id = None
            if session_id is not None and not await self.context.get_state(f"closed:{session_id}"):
                return session_id, session_token
        session_id = new_session_id()
        return session_id, issue_session_token(self._secret, visitor_id, session_id)

    def verified_handles(self, identity: str | None, identity_hash: str | None) -> tuple[Handle, ...]:
        """The email handle a site vouched for; TokenError when the site's HMAC does not match."""
        if not identity and not identity_hash:
            return ()
        secret = self.settings.identity_secret
        if secret is None or not identity or not identity_hash:
            raise TokenError("verified identities are not enabled for this site")
        if not verify_identity(secret.get_secret_value(), identity, identity_hash):
            raise TokenError("identity hash does not match")
        email = normalize_email(identity)
        if email is None:
            raise TokenError("a verified identity must be an email address")
        return (Handle(channel="email", address=email),)

    async def start(
        self,
        token: str | None,
        session_token: str | None,
        *,
        identity: str | None = None,
        identity_hash: str | None = None,
        name: str | None = None,
    ) -> Visitor:
        """Authenticate a visitor and open (or resume) their chat session."""
        visitor_id, token = self.authenticate(token)
        handles = self.verified_handles(identity, identity_hash)
        session_id, session_token = await self.open_session(visitor_id, session_token)
        return Visitor(visitor_id, token, session_id, session_token, handles, name)

    async def accept_message(
        self, visitor: Visitor, client_id: str, text: str, upload: str | None, base_url: str
    ) -> dict[str, Any]:
        """Store a visitor's message through the Hub (once per client id) and return its ack."""
        parts: list[Part] = []
        if upload:
            parts.append(await self._upload_part(visitor, upload, base_url))
        if text.strip():
            parts.append(TextPart(text=text))
        provider_id = f"{visitor.visitor_id}:{client_id}"
        item = InboundMessage(
            account=self.settings.site_id,
            thread_key=visitor.session_id,
            sender=visitor.visitor_id,
            sender_name=visitor.name,
            provider_message_id=provider_id,
            parts=tuple(parts),
            sent_at=self.context.now(),
            verified_handles=visitor.verified_handles,
        )
        report = await self.context.submit([item])
        server_id = report.stored[0].id if report.stored else await self._stored_id(visitor, provider_id)
        if report.conversation_ids and report.conversation_ids[0]:
            visitor.conversation_id = report.conversation_ids[0]
        return {
            "type": "ack",
            "client_id": client_id,
            "id": server_id,
            "duplicate": not report.stored,
            "attachments": attachments(parts),
        }

    async def accept_read(self, visitor: Visitor, message_id: str) -> None:
        """The visitor saw every agent message up to ``message_id``: a read watermark."""
        messages = await self.context.thread_messages(
            self.settings.site_id, visitor.session_id, self.settings.history_limit
        )
        seen = next((m for m in messages if m.id == message_id), None)
        if seen is None:
            return
        await self.context.submit(
            [
                InboundDelivery(
                    account=self.settings.site_id,
                    status=DeliveryStatus.READ,
                    thread_key=visitor.session_id,
                    watermark=seen.sent_at,
                    at=self.context.now(),
                )
            ]
        )

    async def accept_status(self, provider_id: str, status: DeliveryStatus) -> None:
        """A receipt for one pushed agent message (the widget acknowledges every push)."""
        await self.context.submit(
            [
                InboundDelivery(
                    account=self.settings.site_id,
                    status=status,
                    provider_message_id=provider_id,
                    at=self.context.now(),
                )
            ]
        )

    @property
    def rechecks_receipts(self) -> bool:
        """Receipts are checked back only where workers race (several processes on PostgreSQL)."""
        return self._notifier is not None

    async def recheck_delivered(self, visitor: Visitor, provider_id: str) -> None:
        """Resubmit a delivery receipt the Hub could not match yet.

        With several processes, the visitor's acknowledgement can reach the Hub before the
        dispatching worker committed the send's provider id; the core keeps such a receipt
        as pending, but two concurrent transactions can miss each other. Checking back once
        the send had time to land closes that gap (a receipt that did apply is not resent).
        """
        for delay in RECEIPT_RECHECKS:
            await anyio.sleep(delay)
            for message in reversed(await self.history(visitor, None)):
                if provider_id in message.provider_ids:
                    if message.status in (DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.UNKNOWN):
                        await self.accept_status(provider_id, DeliveryStatus.DELIVERED)
                    return

    async def accept_typing(self, connection: Connection, on: bool) -> None:
        """Fan a visitor's typing state out (never stored): to the Hub's subscribers and other tabs."""
        connection.typing = on
        visitor = connection.visitor
        await self.context.publish(
            Typing(
                channel=self.name,
                account=self.settings.site_id,
                thread_key=visitor.session_id,
                on=on,
                by=AuthorKind.CONTACT,
            )
        )
        self.push_to_session(
            visitor.session_id, {"type": "typing", "from": "visitor", "on": on}, skip=connection
        )

    async def history(self, visitor: Visitor, since: str | None) -> list[Message]:
        """The session's stored messages after ``since`` (all of them when unknown or None)."""
        messages = await self.context.thread_messages(
            self.settings.site_id, visitor.session_id, self.settings.history_limit
        )
        if since:
            for index, message in enumerate(messages):
                if message.id == since:
                    return messages[index + 1 :]
        return messages

    async def transcript(self, session_id: str) -> str:
        """The session's messages as plain text: ``[time] Visitor: text`` lines, oldest first."""
        messages = await self.context.thread_messages(
            self.settings.site_id, session_id, self.settings.history_limit
        )
        lines = []
        for message in messages:
            who = "Visitor" if message.direction is Direction.INBOUND else (message.author.name or "Agent")
            text = plain_text(message.parts)
            files = " ".join(f"[{a['filename'] or 'file'}: {a['url']}]" for a in attachments(message.parts))
            body = " ".join(piece for piece in (text, files) if piece)
            lines.append(f"[{message.sent_at:%Y-%m-%d %H:%M} UTC] {who}: {body}")
        return "\n".join(lines)

    async def conversation_of(self, visitor: Visitor) -> str | None:
        if visitor.conversation_id is None:
            messages = await self.history(visitor, None)
            if messages:
                visitor.conversation_id = messages[-1].conversation_id
        return visitor.conversation_id

    # ------------------------------------------------------------------ internals

    async def _stored_id(self, visitor: Visitor, provider_id: str) -> str:
        for message in reversed(await self.history(visitor, None)):
            if message.provider_message_id == provider_id:
                if visitor.conversation_id is None:
                    visitor.conversation_id = message.conversation_id
                return message.id
        return provider_id

    async def _upload_part(self, visitor: Visitor, upload_token: str, base_url: str) -> Part:
        from omnilink import MediaPart

        from ._tokens import verify_upload_token

        upload_id = verify_upload_token(self._secret, upload_token, visitor_id=visitor.visitor_id)
        found = await self.uploads.get(upload_id)
        if found is None:
            raise TokenError("unknown upload")
        meta, _ = found
        return MediaPart(
            url=f"{base_url}/uploads/{upload_id}",
            content_type=meta.content_type,
            size=meta.size,
            filename=meta.filename,
        )

    def _outbound_frame(self, outbound: OutboundMessage) -> dict[str, Any]:
        return {
            "type": "message",
            "id": outbound.message_id,
            "part": outbound.part_index,
            "provider_id": outbound.idempotency_key,
            "from": "agent",
            "author": None,
            "client_id": None,
            "text": plain_text(outbound.parts),
            "attachments": attachments(outbound.parts),
            "parts": [part.model_dump(mode="json") for part in outbound.parts],
            "sent_at": self.context.now().isoformat(),
            "status": DeliveryStatus.SENT.value,
        }

    def frame_for_stored(self, message: Message, part_index: int | None = None) -> dict[str, Any]:
        """A stored outbound message as pushed live (one planned piece), for other processes."""
        parts: tuple[Part, ...] = message.parts
        if part_index is not None:
            pieces = plan(list(message.parts), self.capabilities).messages
            if part_index < len(pieces):
                parts = pieces[part_index].parts
        return {
            "type": "message",
            "id": message.id,
            "part": part_index,
            "provider_id": f"{message.id}:{part_index or 0}",
            "from": "agent" if message.direction is Direction.OUTBOUND else "visitor",
            "author": message.author.name,
            "client_id": None,
            "text": plain_text(parts),
            "attachments": attachments(parts),
            "parts": [part.model_dump(mode="json") for part in parts],
            "sent_at": message.sent_at.isoformat(),
            "status": DeliveryStatus.SENT.value,
        }
