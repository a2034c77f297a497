"""The Hub: one object through which a helpdesk receives, sends and threads conversations.

It is an async context manager that owns every lifetime: the store (when it opened it), the
HTTP client, the channels and one task group for background work (the outbox dispatcher,
channel pollers and servers, event handlers).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import secrets
import statistics
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel, ValidationError

from . import _http
from ._capabilities import Capabilities, html_to_text, plan
from ._channel import (
    ASGIApp,
    Channel,
    ChannelContext,
    ChannelSpec,
    Inbound,
    InboundDeletion,
    InboundDelivery,
    InboundMessage,
    InboundOptChange,
    InboundReaction,
    InboundTyping,
    OutboundMessage,
    SendContext,
    SendResult,
    WebhookRequest,
    WebhookResponse,
)
from ._errors import (
    ConfigurationError,
    CredentialsError,
    InvalidInputError,
    LifecycleError,
    NotFoundError,
    OmnilinkError,
    OptedOutError,
    OutcomeUnknownError,
    PayloadError,
    PolicyRefusal,
    Remedy,
    RetryableSendError,
    SendError,
    StoreError,
    WebhookError,
)
from ._group import GroupCommit
from ._models import (
    EVENT_ADAPTER,
    AdapterHealth,
    Author,
    AuthorKind,
    Contact,
    ContactLink,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Event,
    Handle,
    HealthState,
    HtmlPart,
    LinkStrength,
    LocationPart,
    MediaPart,
    Message,
    MessageQueued,
    MessageReceived,
    Part,
    TextPart,
    ThreadDecision,
    ThreadRef,
    UnknownPart,
    new_id,
    text_of,
    utcnow,
)
from ._pipeline import (
    IngestReport,
    ThreadingSettings,
    add_thread,
    apply_status,
    ingest,
    link_contacts,
    linked_contact_ids,
    locked_conversation,
    locked_message,
    provider_lock_key,
    resolve_contact,
    take_pending_status,
)
from ._plugins import BrokenPlugin, PluginHost
from ._store._base import EventFeed, OutboxRow, OutboxState, Store, Transaction, stored_json
from ._store._feed import MAX_PAYLOAD

T = TypeVar("T")

log = logging.getLogger("omnilink.hub")

Content = str | Part | Sequence[Part]
"""What ``reply`` accepts: a string (one text part), one part, or parts in order."""

__all__ = ["Content", "ConversationPage", "Hub", "HubSettings", "IngestReport", "ResponseStats"]


@dataclass(frozen=True)
class HubSettings:
    """Tunables of a Hub. The defaults suit one helpdesk process."""

    threading: ThreadingSettings = field(default_factory=ThreadingSettings)
    max_attempts: int = 8
    """Sends retried this many times before they fail."""
    backoff_base: float = 0.5
    """First retry delay in seconds; doubles each attempt (capped by ``backoff_max``)."""
    backoff_max: float = 300.0
    lease: timedelta = timedelta(minutes=5)
    """How long a dispatcher owns a claimed send; past it, a crash is assumed."""
    dispatch_batch: int = 32
    dispatch_concurrency: int = 16
    poll_interval: float = 1.0
    """How often the dispatcher looks for work queued by other processes."""
    credentials_pause: timedelta = timedelta(minutes=5)
    """How long dispatch on a channel pauses after its credentials were refused."""
    subscriber_buffer: int = 10_000
    http_timeout: float | None = None
    """Seconds a provider request may take (None: 15 s, 5 s to connect)."""
    close_timeout: float = 10.0
    share_events: bool = False
    """Share events with every other process on the same store, both ways: each event this
    Hub publishes goes to them, and theirs reach this Hub's subscribers and handlers (a web
    process sees what webhook workers and dispatchers elsewhere stored). Needs a store with
    other processes to share with: ``PostgresStore`` (LISTEN/NOTIFY, one channel per schema).
    Live, not durable: events from while a process was not listening are not replayed."""

    def __post_init__(self) -> None:
        for name in ("max_attempts", "dispatch_batch", "dispatch_concurrency", "subscriber_buffer"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigurationError(f"HubSettings.{name} must be at least 1, got {value!r}")
        for name in ("backoff_base", "backoff_max", "poll_interval", "close_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigurationError(f"HubSettings.{name} must be positive, got {value!r}")
        if self.http_timeout is not None and not self.http_timeout > 0:
            raise ConfigurationError(f"HubSettings.http_timeout must be positive, got {self.http_timeout!r}")
        if not self.lease.total_seconds() > 0:
            raise ConfigurationError(f"HubSettings.lease must be positive, got {self.lease!r}")
        request = self.http_timeout or _http.DEFAULT_TIMEOUT.read or 15.0
        if self.lease.total_seconds() <= request:
            # Not refused: crash drills shorten the lease on purpose (the owner is dead there).
            log.warning(
                "HubSettings.lease (%g s) is not longer than a provider request may take"
                " (http_timeout %g s): a send still in flight when its lease ends is taken over"
                " by another dispatcher, which may send it again",
                self.lease.total_seconds(),
                request,
            )


@dataclass(frozen=True)
class ConversationPage:
    """One page of conversations, newest-updated first, and where the next one starts."""

    conversations: list[Conversation]
    next: str | None
    """Pass as ``after=`` for the next (older) page; None on the last page."""


def _page_cursor(conversation: Conversation, save_seq: int) -> str:
    return f"{conversation.updated_at.isoformat(timespec='microseconds')}~{save_seq}"


def _parse_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, seq = cursor.rsplit("~", 1)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("naive time")
        return when, int(seq)
    except ValueError:
        raise InvalidInputError(f"{cursor!r} is not a page cursor (pass a page's .next)") from None


@dataclass(frozen=True)
class ResponseStats:
    """Response-time figures of one channel, in seconds."""

    channel: str
    conversations: int
    first_response_median: float | None
    first_response_p90: float | None
    response_median: float | None


def _check_storable(item: Inbound) -> None:
    """Refuse key fields no store can keep: NUL characters, text that is not valid Unicode.

    Content (text, names, raw payloads) is checked where it is written: every store refuses
    a model without JSON (``stored_json``) inside the transaction, which then rolls back.
    """
    if not isinstance(item, InboundMessage):
        stored_json(item)
    keys = [getattr(item, "account", None) or ""]
    if isinstance(item, InboundMessage):
        keys += [item.thread_key, item.sender, item.provider_message_id]
        keys += [h.address for h in item.verified_handles]
    elif isinstance(item, InboundDelivery | InboundReaction | InboundDeletion):
        keys += [item.provider_message_id or "", item.thread_key or ""]
    elif isinstance(item, InboundOptChange | InboundTyping):
        keys += [getattr(item, "address", ""), getattr(item, "thread_key", "")]
    for key in keys:
        if "\x00" in key:
            raise PayloadError(f"a key field of the {item.kind} contains a NUL character")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PayloadError(f"a key field of the {item.kind} is not valid Unicode: {exc}") from exc


def _first_error(exc: BaseException) -> BaseException:
    """The innermost first exception of nested exception groups (what actually went wrong)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _shared_payload(origin: str, event: Event) -> str | None:
    """A notification for ``event``: its JSON when it fits, else (for the events that carry a
    stored message) the ids to load it by; None when neither fits."""
    payload = f'{{"o":"{origin}","e":{event.model_dump_json()}}}'
    if len(payload.encode()) <= MAX_PAYLOAD:
        return payload
    if isinstance(event, MessageReceived):
        ref: dict[str, object] = {"k": event.kind, "m": event.message.id, "n": event.new_conversation}
    elif isinstance(event, MessageQueued):
        ref = {"k": event.kind, "m": event.message.id}
    else:
        return None
    return json.dumps({"o": origin, "r": ref}, separators=(",", ":"))


def _plain(parts: Sequence[Part]) -> str:
    """Parts as text: HTML as text, files as links, places as coordinates."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, HtmlPart):
            out.append(part.text or html_to_text(part.html))
        elif isinstance(part, MediaPart):
            label = part.caption or part.filename or part.content_type
            out.append(f"[{label}: {part.url}]")
        elif isinstance(part, LocationPart):
            place = ", ".join(p for p in (part.name, part.address) if p)
            out.append(f"[location {part.latitude:.5f},{part.longitude:.5f}{' ' + place if place else ''}]")
        elif isinstance(part, UnknownPart):
            out.append(f"[{part.provider_type}]")
        else:
            out.append(text_of((part,)))
    return "\n".join(piece.strip() for piece in out if piece.strip())


def _as_parts(content: Content) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(text=content),)
    if isinstance(content, BaseModel):
        return (content,)
    return tuple(content)


class Hub:
    """Receive, send and thread customer conversations on every installed channel.

    ```python
    async with Hub(store=SQLiteStore("helpdesk.sqlite3"), channels={"sms": {...}}) as hub:
        response = await hub.handle_webhook("sms", request)
        await hub.reply(conversation_id, "Thanks, we're on it.")
    ```

    Nothing is loaded or opened by the constructor; ``__aenter__`` loads plugins (entry
    points of the group ``omnilink`` unless ``load_entry_points=False``), validates channel
    configs, opens the store and the channels, and starts the dispatcher.
    """

    def __init__(
        self,
        *,
        store: Store | None = None,
        channels: Mapping[str, BaseModel | Mapping[str, Any]] | None = None,
        plugins: Sequence[object] = (),
        load_entry_points: bool = True,
        strict: bool = False,
        transport: _http.AsyncTransport | None = None,
        settings: HubSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        public_url: str | None = None,
        dispatch: bool = True,
    ) -> None:
        self._store_arg = store
        self._channel_configs = dict(channels or {})
        self._plugins = list(plugins)
        self._load_entry_points = load_entry_points
        self._strict = strict
        self._transport = transport
        self.settings = settings or HubSettings()
        self.now: Callable[[], datetime] = clock or utcnow
        """The business clock (windows, timestamps, metrics). The outbox schedule always
        uses wall-clock time, so retries and leases work across processes."""
        self.public_url = public_url
        self._dispatch_enabled = dispatch
        self._state = "new"
        self.plugins = PluginHost(strict=strict)
        self.specs: dict[str, ChannelSpec] = {}
        self._channels: dict[str, Channel] = {}
        self._store: Store | None = None
        self._records: GroupCommit | None = None
        self._owns_store = False
        self._http: _http.AsyncClient | None = None
        self._tg: TaskGroup | None = None
        self._wake = anyio.Event()
        self._paused: dict[str, datetime] = {}
        self._subscribers: list[MemoryObjectSendStream[Event]] = []
        self._idle = anyio.Event()
        self._origin = secrets.token_hex(8)
        """Names this Hub's shared events (it ignores them when they come back)."""
        self._outgoing: MemoryObjectSendStream[str] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def store(self) -> Store:
        """The Hub's store; only while the Hub is open (every query goes through here)."""
        # "closing" still answers: background tasks finish their step while being cancelled.
        if self._store is None or self._state not in ("opening", "open", "closing"):
            raise LifecycleError(f"the Hub is {self._state}; use it inside 'async with hub:'")
        return self._store

    @property
    def broken_plugins(self) -> list[BrokenPlugin]:
        """Plugins that failed to load (only filled when not strict)."""
        return list(self.plugins.broken)

    def channel(self, name: str) -> Channel:
        """The open channel called ``name``."""
        self._require_open()
        try:
            return self._channels[name]
        except KeyError:
            raise ConfigurationError(
                f"no channel {name!r} is configured (configured: {sorted(self._channels) or 'none'})"
            ) from None

    @property
    def channels(self) -> Mapping[str, Channel]:
        return dict(self._channels)

    async def __aenter__(self) -> Hub:
        if self._state != "new":
            raise LifecycleError(f"a Hub cannot be opened twice (it is {self._state})")
        self._state = "opening"
        try:
            await self._open()
        except BaseException:
            await self._teardown()
            self._state = "closed"
            raise
        self._state = "open"
        return self

    async def _open(self) -> None:
        from ._store._sqlite import SQLiteStore

        for plugin in self._plugins:
            self.plugins.register(plugin)
        if self._load_entry_points:
            self.plugins.load_entry_points()
        self.specs = self.plugins.channel_specs()
        store = self._store_arg if self._store_arg is not None else SQLiteStore("omnilink.sqlite3")
        if not store.is_open:
            await store.open()
            self._owns_store = True
        self._store = store
        self._records = GroupCommit(store)
        self._http = _http.create_client(self._transport, self.settings.http_timeout)
        for name, raw in self._channel_configs.items():
            spec = self.specs.get(name)
            if spec is None:
                raise ConfigurationError(
                    f"channel {name!r} is configured but no installed plugin provides it "
                    f"(installed: {sorted(self.specs) or 'none'})"
                )
            try:
                config = spec.config_model.model_validate(
                    raw.model_dump() if isinstance(raw, BaseModel) else raw
                )
            except ValidationError as exc:
                raise ConfigurationError(f"invalid config for channel {name!r}:\n{exc}") from exc
            self._channels[name] = spec.factory(config, self._context(name))
        for channel in self._channels.values():
            await channel.open()
        feed = store.event_feed() if self.settings.share_events else None
        if self.settings.share_events and feed is None:
            raise ConfigurationError(
                f"HubSettings.share_events needs a store shared by several processes (PostgresStore);"
                f" {type(store).__name__} has no other process to share events with"
            )
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        if feed is not None:
            await self._share_events(feed)
        # Background work (pollers, sockets) may submit as soon as it starts.
        self._state = "open"
        for handler in self.plugins.event_handlers():
            self.add_handler(handler)
        for channel in self._channels.values():
            if channel.has_background_work:
                await self._tg.start(self._run_channel, channel)
        if self._dispatch_enabled:
            await self._tg.start(self._dispatcher)

    async def _run_channel(self, channel: Channel, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        await channel.run(task_status=task_status)

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop background work and release every resource; idempotent."""
        if self._state in ("closed", "closing"):
            return
        self._state = "closing"
        await self._teardown()
        self._state = "closed"

    async def _teardown(self) -> None:
        if self._tg is not None:
            # Exit the task group in the scope it was entered in (never inside another scope).
            self._tg.cancel_scope.cancel()
            try:
                await self._tg.__aexit__(None, None, None)
            except Exception:
                log.exception("background task failed while closing")
            self._tg = None
        self._outgoing = None
        with anyio.move_on_after(self.settings.close_timeout, shield=True):
            for stream in self._subscribers:
                await stream.aclose()
            self._subscribers.clear()
            for name, channel in self._channels.items():
                try:
                    await channel.aclose()
                except Exception:
                    log.exception("channel %s failed to close", name)
            if self._http is not None:
                await self._http.aclose()
            if self._store is not None and self._owns_store:
                await self._store.aclose()

    def _require_open(self) -> None:
        if self._state != "open":
            raise LifecycleError(f"the Hub is {self._state}; use it inside 'async with hub:'")

    def _context(self, name: str) -> ChannelContext:
        assert self._http is not None

        async def submit(items: Sequence[Inbound]) -> IngestReport:
            return await self.ingest(name, items)

        async def get_state(key: str) -> str | None:
            return await self.store.run(lambda tx: tx.get_state(f"channel:{name}:{key}"))

        async def set_state(key: str, value: str) -> None:
            await self.store.run(lambda tx: tx.set_state(f"channel:{name}:{key}", value))

        async def thread_messages(account: str, thread_key: str, limit: int) -> list[Message]:
            return await self.store.run(lambda tx: tx.thread_messages(name, account, thread_key, limit))

        async def find_message(
            message_id: str | None, account: str | None, provider_id: str | None
        ) -> Message | None:
            def find(tx: Transaction) -> Message | None:
                if message_id is not None:
                    found = tx.get_message(message_id)
                elif account is not None and provider_id is not None:
                    found = tx.message_by_provider_id(name, account, provider_id)
                else:
                    found = None
                return found if found is not None and found.channel == name else None

            return await self.store.run(find)

        async def continue_on(conversation_id: str, channel: str, address: str, reason: str) -> Conversation:
            return await self.continue_on(conversation_id, channel, address, reason=reason)

        return ChannelContext(
            name=name,
            find_message=find_message,
            continue_on=continue_on,
            http=self._http,
            submit=submit,
            get_state=get_state,
            set_state=set_state,
            publish=self.publish,
            thread_messages=thread_messages,
            now=self.now,
            public_url=self.public_url,
        )

    # ------------------------------------------------------------------ events

    async def publish(self, event: Event) -> None:
        """Give ``event`` to every subscriber and handler, in order (and, with
        ``HubSettings.share_events``, to the other processes on the store)."""
        if self._outgoing is not None:
            self._announce(event)
        await self._publish_here(event)

    async def _publish_here(self, event: Event) -> None:
        for stream in list(self._subscribers):
            try:
                stream.send_nowait(event)
            except anyio.WouldBlock:
                log.error(
                    "a subscriber fell %d events behind; it is disconnected", self.settings.subscriber_buffer
                )
                self._subscribers.remove(stream)
                await stream.aclose()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.remove(stream)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
        """Receive every event published from now on: ``async with hub.subscribe() as events``."""
        self._require_open()
        send, receive = anyio.create_memory_object_stream[Event](self.settings.subscriber_buffer)
        self._subscribers.append(send)
        try:
            async with receive:
                yield receive
        finally:
            if send in self._subscribers:
                self._subscribers.remove(send)
            await send.aclose()

    def add_handler(self, handler: Any) -> None:
        """Deliver every event to ``handler.handle(event)`` in the Hub's task group."""
        if self._tg is None:
            raise LifecycleError("handlers can be added only while the Hub is open")
        send, receive = anyio.create_memory_object_stream[Event](self.settings.subscriber_buffer)
        self._subscribers.append(send)

        async def run() -> None:
            async with receive:
                async for event in receive:
                    try:
                        await handler.handle(event)
                    except Exception:
                        log.exception("event handler %r failed on %s", handler, event.kind)

        self._tg.start_soon(run)

    async def _publish_all(self, events: Sequence[Event]) -> None:
        if not self._subscribers and self._outgoing is None:  # nobody listens: skip a coroutine per event
            return
        for event in events:
            await self.publish(event)

    # ------------------------------------------------------------------ shared events

    async def _share_events(self, feed: EventFeed) -> None:
        """Start listening (raises if the store cannot) and the two tasks that carry events."""
        assert self._tg is not None
        outgoing, to_send = anyio.create_memory_object_stream[str](self.settings.subscriber_buffer)
        arrived, incoming = anyio.create_memory_object_stream[str](self.settings.subscriber_buffer)

        def deliver(payload: str) -> None:
            try:
                arrived.send_nowait(payload)
            except anyio.WouldBlock:
                log.warning(
                    "a shared event was dropped: this Hub is %d events behind",
                    self.settings.subscriber_buffer,
                )

        await self._tg.start(self._listen_events, feed, deliver)
        self._tg.start_soon(self._receive_events, incoming)
        self._tg.start_soon(self._send_events, feed, to_send)
        self._outgoing = outgoing

    async def _listen_events(
        self, feed: EventFeed, deliver: Callable[[str], None], *, task_status: Any = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep listening: a broken connection is logged and listened on again."""
        started, delay = False, 0.5
        while True:
            try:
                async with anyio.create_task_group() as tg:
                    await tg.start(functools.partial(feed.listen, deliver))
                    if not started:
                        started = True
                        task_status.started()
                    delay = 0.5
            except Exception as exc:
                if not started:
                    raise StoreError(f"cannot listen for shared events: {_first_error(exc)}") from exc
                log.warning(
                    "listening for shared events failed (%s); again in %.1f s", _first_error(exc), delay
                )
                await anyio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _send_events(self, feed: EventFeed, to_send: MemoryObjectReceiveStream[str]) -> None:
        async with to_send:
            async for first in to_send:
                batch = [first]
                while len(batch) < 100:
                    try:
                        batch.append(to_send.receive_nowait())
                    except anyio.WouldBlock:
                        break
                try:
                    await feed.send(batch)
                except OmnilinkError as exc:
                    log.warning("%d shared events not sent: %s", len(batch), exc)

    def _announce(self, event: Event) -> None:
        assert self._outgoing is not None
        payload = _shared_payload(self._origin, event)
        if payload is None:
            log.warning("a %s event is too large to share and has no stored form; not shared", event.kind)
            return
        try:
            self._outgoing.send_nowait(payload)
        except anyio.WouldBlock:
            log.warning("a shared event was dropped: %d waiting to be sent", self.settings.subscriber_buffer)

    async def _receive_events(self, incoming: MemoryObjectReceiveStream[str]) -> None:
        async with incoming:
            async for payload in incoming:
                if not self._subscribers:
                    continue  # nobody here to give it to: not even worth decoding
                try:
                    event = await self._shared_event(payload)
                except Exception:
                    log.warning("a shared event could not be read: %.200s", payload, exc_info=True)
                    continue
                if event is not None:
                    await self._publish_here(event)

    async def _shared_event(self, payload: str) -> Event | None:
        data = json.loads(payload)
        if data.get("o") == self._origin:
            return None
        if "e" in data:
            return EVENT_ADAPTER.validate_python(data["e"])
        ref = data["r"]

        def load(tx: Transaction) -> tuple[Message | None, Conversation | None]:
            message = tx.get_message(str(ref["m"]))
            if message is None or ref["k"] == "message_queued":
                return message, None
            return message, tx.get_conversation(message.conversation_id)

        message, conversation = await self.store.run(load)  # one transaction for both
        if message is None:
            return None
        if ref["k"] == "message_queued":
            return MessageQueued(message=message)
        if conversation is None:
            return None
        return MessageReceived(message=message, conversation=conversation, new_conversation=bool(ref["n"]))

    # ------------------------------------------------------------------ receive

    async def handle_webhook(self, channel: str, request: WebhookRequest) -> WebhookResponse:
        """Verify, parse and store one provider request; return the answer to give it.

        The answer is a 2xx only after every item of the request is committed, so a crash
        makes the provider retry instead of losing a message. Refused requests get the
        status their error names (403 for a bad signature) and store nothing.
        """
        self._require_open()
        target = self._channels.get(channel)
        if target is None:
            return WebhookResponse.text(f"unknown channel {channel!r}", 404)
        try:
            result = await target.handle_webhook(request)
        except WebhookError as exc:
            log.warning("%s webhook refused (%s): %s", channel, exc.status, exc)
            return WebhookResponse.text(str(exc), exc.status)
        except (InvalidInputError, ValidationError) as exc:
            log.warning("%s webhook refused: %s", channel, exc)
            return WebhookResponse.text(f"invalid payload: {exc}", 400)
        except Exception:
            # An adapter bug must not take the server down; the provider retries a 500, so
            # nothing is lost once the adapter is fixed.
            log.exception("%s webhook handling failed", channel)
            return WebhookResponse.text("internal error", 500)
        if result.items:
            try:
                await self.ingest(channel, result.items)
            except InvalidInputError as exc:
                log.warning("%s webhook refused: %s", channel, exc)
                return WebhookResponse.text(str(exc), 400)
            except OmnilinkError as exc:
                log.error("%s webhook not stored, the provider will retry: %s", channel, exc)
                return WebhookResponse.text("temporarily unavailable", 503)
        return result.response

    async def ingest(self, channel: str, items: Sequence[Inbound]) -> IngestReport:
        """Run items through dedupe, contact, threading and storage in one transaction."""
        self._require_open()
        target = self.channel(channel)
        caps = target.capabilities
        now = self.now()
        for item in items:
            _check_storable(item)
        report = await self.store.run(
            lambda tx: ingest(tx, channel, caps, items, self.settings.threading, now)
        )
        await self._publish_all(report.events)
        return report

    # ------------------------------------------------------------------ queries

    async def conversation(self, conversation_id: str) -> Conversation:
        found = await self.store.run(lambda tx: tx.get_conversation(conversation_id))
        if found is None:
            raise NotFoundError(f"no conversation {conversation_id!r}")
        return found

    async def conversations(
        self, *, status: ConversationStatus | None = None, limit: int = 100
    ) -> list[Conversation]:
        return await self.store.run(lambda tx: tx.list_conversations(status=status, limit=limit))

    async def conversation_page(
        self,
        *,
        status: ConversationStatus | None = None,
        contact_id: str | None = None,
        linked: bool = True,
        limit: int = 50,
        after: str | None = None,
    ) -> ConversationPage:
        """Conversations newest-updated first, a page at a time (keyset paging: each page
        starts where the last one ended, however many conversations there are).

        ``contact_id`` keeps one customer's conversations (with ``linked``, also those of every
        contact joined to it by an applied link: the customer's history across channels).
        ``after`` is the ``next`` of the previous page; a conversation updated while you page
        moves to the front and is not shown twice. Raises ``InvalidInputError`` for a cursor
        that is not one, ``NotFoundError`` for a contact the store does not have.
        """
        self._require_open()
        if not 1 <= limit <= 1000:
            raise InvalidInputError(f"limit must be between 1 and 1000, got {limit}")
        before = _parse_cursor(after) if after is not None else None

        def page(tx: Transaction) -> list[tuple[Conversation, int]]:
            ids = None
            if contact_id is not None:
                if tx.get_contact(contact_id) is None:
                    raise NotFoundError(f"no contact {contact_id!r}")
                ids = linked_contact_ids(tx, contact_id) if linked else [contact_id]
            return tx.page_conversations(status=status, contact_ids=ids, before=before, limit=limit + 1)

        rows = await self.store.run(page)
        more = len(rows) > limit
        rows = rows[:limit]
        return ConversationPage(
            conversations=[c for c, _ in rows],
            next=_page_cursor(*rows[-1]) if more and rows else None,
        )

    async def messages(self, conversation_id: str) -> list[Message]:
        """Every message of a conversation, oldest first."""
        return await self.store.run(lambda tx: tx.conversation_messages(conversation_id))

    async def transcript(self, conversation_id: str) -> str:
        """The conversation as plain text, oldest first, every channel in one timeline:
        ``[2026-11-23 09:00 UTC] Ana via sms: text``, later lines of a message indented by two
        spaces. Files and places appear as links and coordinates, HTML as text, deleted
        messages as ``(deleted)``. For handing a conversation on by email, or a customer's copy."""
        conv = await self.conversation(conversation_id)
        contact = await self.contact(conv.contact_id)
        lines = []
        for message in await self.messages(conversation_id):
            if message.direction is Direction.INBOUND:
                address = next((h.address for h in contact.handles if h.channel == message.channel), None)
                who = message.author.name or contact.display_name or address or "Customer"
            else:
                who = message.author.name or "Agent"
            body = "(deleted)" if message.deleted_at is not None else _plain(message.parts)
            flags = " (automatic)" if message.automatic else ""
            if message.status is DeliveryStatus.FAILED:
                flags += " (not delivered)"
            body = body.replace("\n", "\n  ")
            lines.append(f"[{message.sent_at:%Y-%m-%d %H:%M} UTC] {who} via {message.channel}{flags}: {body}")
        return "\n".join(lines)

    async def message(self, message_id: str) -> Message:
        found = await self.store.run(lambda tx: tx.get_message(message_id))
        if found is None:
            raise NotFoundError(f"no message {message_id!r}")
        return found

    async def contact(self, contact_id: str) -> Contact:
        found = await self.store.run(lambda tx: tx.get_contact(contact_id))
        if found is None:
            raise NotFoundError(f"no contact {contact_id!r}")
        return found

    async def contact_links(self, contact_id: str) -> list[ContactLink]:
        return await self.store.run(lambda tx: tx.links_of(contact_id))

    async def set_status(self, conversation_id: str, status: ConversationStatus) -> Conversation:
        def change(tx: Transaction) -> Conversation:
            conv = locked_conversation(tx, conversation_id)
            if conv is None:
                raise NotFoundError(f"no conversation {conversation_id!r}")
            conv = conv.model_copy(update={"status": status, "updated_at": self.now()})
            tx.save_conversation(conv)
            return conv

        return await self.store.run(change)

    # ------------------------------------------------------------------ contacts

    async def link_contacts(
        self,
        contact_id: str,
        other_contact_id: str,
        *,
        reason: str,
        evidence: Mapping[str, str] | None = None,
        strength: LinkStrength = LinkStrength.STRONG,
    ) -> ContactLink | None:
        """Record that two contacts are one person. Weak links are suggestions, never applied."""
        now = self.now()
        return await self.store.run(
            lambda tx: link_contacts(
                tx,
                contact_id,
                other_contact_id,
                reason=reason,
                evidence=dict(evidence or {}),
                strength=strength,
                now=now,
            )
        )

    async def undo_link(self, link_id: str) -> ContactLink:
        """Undo a link: the contacts are separate again; the record stays for audit."""

        def undo(tx: Transaction) -> ContactLink:
            link = tx.get_link(link_id)
            if link is None:
                raise NotFoundError(f"no contact link {link_id!r}")
            if link.undone_at is None:
                link = link.model_copy(update={"undone_at": self.now()})
                tx.update_link(link)
            return link

        return await self.store.run(undo)

    async def confirm_link(self, link_id: str) -> ContactLink:
        """Apply a weak (suggested) link after a person confirmed it."""

        def confirm(tx: Transaction) -> ContactLink:
            link = tx.get_link(link_id)
            if link is None:
                raise NotFoundError(f"no contact link {link_id!r}")
            link = link.model_copy(update={"applied": True})
            tx.update_link(link)
            return link

        return await self.store.run(confirm)

    # ------------------------------------------------------------------ send

    def _account(self, channel: Channel, account: str | None) -> str:
        chosen = channel.normalize_account(account) if account else channel.default_account
        if not chosen:
            raise ConfigurationError(f"channel {channel.name!r} has several accounts: name one with account=")
        return chosen

    async def start_conversation(
        self,
        channel: str,
        address: str,
        content: Content,
        *,
        account: str | None = None,
        subject: str | None = None,
        author: Author | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """Write first to a customer at ``address`` on ``channel`` in a new conversation."""
        self._require_open()
        target = self.channel(channel)
        caps = target.capabilities
        if not caps.can_start_conversation:
            raise PolicyRefusal(
                f"{channel} does not let a business write first; wait for the customer to write",
                channel=channel,
                rule="cannot_start",
            )
        normalized = target.normalize_address(address)
        acct = self._account(target, account)
        ref = ThreadRef(channel=channel, account=acct, key=target.thread_key_for(acct, normalized))
        now = self.now()

        def create(tx: Transaction) -> str:
            contact = resolve_contact(tx, Handle(channel=channel, address=normalized), None)
            conv = Conversation(contact_id=contact.id, subject=subject, created_at=now, updated_at=now)
            conv = add_thread(conv, ref, "start_conversation", f"started by the business on {channel}", now)
            tx.save_conversation(conv)
            return conv.id

        if idempotency_key:
            existing = await self.store.run(lambda tx: tx.message_for_idempotency_key(idempotency_key))
            if existing:
                return await self.message(existing)
        conversation_id = await self.store.run(create)
        return await self.reply(
            conversation_id,
            content,
            channel=channel,
            author=author,
            idempotency_key=idempotency_key,
            subject=subject,
        )

    async def continue_on(
        self,
        conversation_id: str,
        channel: str,
        address: str,
        *,
        account: str | None = None,
        reason: str = "",
    ) -> Conversation:
        """Hand a conversation over to another channel: replies go there from now on.

        The contact gets the handle (or is linked to the contact owning it, recorded with the
        reason ``continue_on``), and the thread is added to the conversation with its rule.
        """
        self._require_open()
        target = self.channel(channel)
        normalized = target.normalize_address(address)
        acct = self._account(target, account)
        ref = ThreadRef(channel=channel, account=acct, key=target.thread_key_for(acct, normalized))
        now = self.now()

        def hand_over(tx: Transaction) -> Conversation:
            conv = locked_conversation(tx, conversation_id)
            if conv is None:
                raise NotFoundError(f"no conversation {conversation_id!r}")
            handle = Handle(channel=channel, address=normalized)
            owner = tx.contact_by_handle(handle)
            if owner is None:
                tx.claim_handle(handle, conv.contact_id)
            elif owner.id != conv.contact_id:
                link_contacts(
                    tx,
                    conv.contact_id,
                    owner.id,
                    reason="continue_on",
                    evidence={"channel": channel, "address": normalized, "conversation": conv.id},
                    strength=LinkStrength.STRONG,
                    now=now,
                )
            detail = reason or f"handed over to {channel} {normalized}"
            conv = add_thread(conv, ref, "continue_on", detail, now)
            conv = conv.model_copy(update={"last_channel": channel, "last_thread": ref, "updated_at": now})
            tx.save_conversation(conv)
            return conv

        return await self.store.run(hand_over)

    async def reply(
        self,
        conversation_id: str,
        content: Content,
        *,
        channel: str | None = None,
        author: Author | None = None,
        idempotency_key: str | None = None,
        automatic: bool = False,
        subject: str | None = None,
    ) -> Message:
        """Queue a reply in a conversation; it is dispatched in the background.

        The channel defaults to the one the customer last wrote on. Policy checks (opt-outs,
        messaging windows, plugin policies) run before anything is stored: a refusal raises a
        PolicyRefusal naming remedies. The content is planned for the channel (its
        degradations recorded on the message). With ``idempotency_key``, a repeated call
        returns the first call's message instead of sending twice.
        """
        self._require_open()
        if idempotency_key:
            existing = await self.store.run(lambda tx: tx.message_for_idempotency_key(idempotency_key))
            if existing:
                return await self.message(existing)
        parts = _as_parts(content)
        author = author or Author(kind=AuthorKind.AUTOMATION if automatic else AuthorKind.AGENT)
        conv = await self.conversation(conversation_id)
        name = channel or conv.last_channel or (conv.threads[-1].channel if conv.threads else None)
        if name is None:
            raise ConfigurationError(f"conversation {conversation_id!r} has no channel; pass channel=")
        target = self.channel(name)
        last = conv.last_thread
        thread = last if last is not None and last.channel == name else conv.thread_for(name)
        if thread is None:
            raise PolicyRefusal(
                f"conversation {conversation_id} has no {name} thread",
                channel=name,
                rule="no_thread",
                remedies=[
                    Remedy("continue_on", f"call continue_on(conversation, {name!r}, address) first", name)
                ],
            )
        now = self.now()

        def context(tx: Transaction) -> tuple[Contact, datetime | None, bool, tuple[str, ...], bool]:
            contact = tx.get_contact(conv.contact_id)
            assert contact is not None
            last_in = None
            last_automatic: bool | None = None
            for m in reversed(tx.thread_messages(name, thread.account, thread.key, 200)):
                if m.direction is Direction.INBOUND:
                    if last_automatic is None:
                        last_automatic = m.automatic
                    if not m.automatic:
                        last_in = m.sent_at
                        break
            recipient = self._recipient(contact, name, thread)
            opted_out = tx.is_opted_out(name, thread.account, recipient)
            others: list[str] = []
            for cid in linked_contact_ids(tx, contact.id):
                c = tx.get_contact(cid)
                for h in c.handles if c else ():
                    if h.channel != name and h.channel in self._channels and h.channel not in others:
                        others.append(h.channel)
            return contact, last_in, opted_out, tuple(others), bool(last_automatic)

        contact, last_in, opted_out, others, last_automatic = await self.store.run(context)
        recipient = self._recipient(contact, name, thread)
        remedies = [Remedy("use_channel", f"continue on {o}", o) for o in others]
        if opted_out:
            raise OptedOutError(
                f"{recipient} opted out of {name} messages from {thread.account}",
                channel=name,
                rule="opt_out",
                remedies=[
                    *remedies,
                    Remedy("ask_opt_in", "the customer can opt back in (e.g. reply START)", name),
                ],
            )
        ctx = SendContext(
            conversation=conv,
            contact=contact,
            thread=thread,
            author=author,
            last_inbound_at=last_in,
            now=now,
            other_channels=others,
            automatic=automatic,
            last_inbound_automatic=last_automatic,
        )
        options = await target.check_send(ctx)
        refusal = self.plugins.send_policy(ctx)
        if refusal is not None:
            raise refusal
        caps = target.capabilities_for(thread)
        planned = plan(parts, caps)
        message = Message(
            conversation_id=conv.id,
            contact_id=contact.id,
            direction=Direction.OUTBOUND,
            channel=name,
            account=thread.account,
            thread_key=thread.key,
            author=author,
            parts=parts,
            subject=subject or conv.subject,
            status=DeliveryStatus.QUEUED,
            status_updated_at=now,
            automatic=automatic,
            send_options=dict(options),
            degradations=tuple(f"{d.kind}: {d.detail}" for d in planned.degradations),
            sent_at=now,
            threading=ThreadDecision(rule="reply", detail=f"reply on {name} thread {thread.key}"),
        )

        wall = utcnow()  # the outbox is scheduled on wall-clock time, whatever the Hub's clock

        def enqueue(tx: Transaction) -> Message:
            if idempotency_key and not tx.put_idempotency_key(idempotency_key, message.id):
                existing = tx.message_for_idempotency_key(idempotency_key)
                found = tx.get_message(existing) if existing else None
                assert found is not None
                return found
            tx.insert_message(message)
            for index in range(len(planned.messages)):
                tx.insert_outbox(
                    OutboxRow(
                        id=new_id("obx"),
                        message_id=message.id,
                        part_index=index,
                        channel=name,
                        due_at=wall,
                        created_at=wall,
                    )
                )
            current = locked_conversation(tx, conv.id) or conv
            update: dict[str, object] = {"updated_at": now, "last_outbound_at": now}
            if (
                author.kind is AuthorKind.AGENT
                and current.first_response_at is None
                and current.first_inbound_at is not None
            ):
                update["first_response_at"] = now
            if current.status is ConversationStatus.OPEN and author.kind is AuthorKind.AGENT:
                update["status"] = ConversationStatus.PENDING
            tx.save_conversation(current.model_copy(update=update))
            return message

        stored = await self.store.run(enqueue)
        if stored.id == message.id:
            await self.publish(MessageQueued(message=stored))
            self._wake.set()
        return stored

    def _recipient(self, contact: Contact, channel: str, thread: ThreadRef) -> str:
        for handle in contact.handles:
            if handle.channel == channel and handle.address == thread.key:
                return handle.address
        for handle in contact.handles:
            if handle.channel == channel:
                return handle.address
        return thread.key

    async def send_typing(self, conversation_id: str, on: bool = True) -> None:
        """Show (or hide) the agent typing to the customer on the conversation's channel."""
        conv = await self.conversation(conversation_id)
        name = conv.last_channel
        thread = conv.thread_for(name) if name else None
        if name is None or thread is None:
            return
        await self.channel(name).send_typing(thread.account, thread.key, on)

    async def mark_read(self, conversation_id: str, *, up_to: str | None = None) -> list[Message]:
        """Tell the customer, on every thread of the conversation, that an agent read their
        messages (up to the message ``up_to``, by default all of them).

        For each thread, the channel is told the newest inbound message read (see
        ``Channel.mark_read``); channels without read receipts ignore it. Best effort: a
        channel that refuses (a closed window, a provider error) is logged and skipped.
        Returns the messages the channels were told about.
        """
        self._require_open()
        conv = await self.conversation(conversation_id)
        history = await self.messages(conversation_id)
        if up_to is not None:
            limit = next((m for m in history if m.id == up_to), None)
            if limit is None:
                raise NotFoundError(f"no message {up_to!r} in conversation {conversation_id!r}")
            history = history[: history.index(limit) + 1]
        marked: list[Message] = []
        for ref in conv.threads:
            channel = self._channels.get(ref.channel)
            newest = next(
                (
                    m
                    for m in reversed(history)
                    if m.direction is Direction.INBOUND
                    and (m.channel, m.account, m.thread_key) == (ref.channel, ref.account, ref.key)
                    and m.deleted_at is None
                ),
                None,
            )
            if channel is None or newest is None:
                continue
            try:
                await channel.mark_read(newest)
            except (SendError, PolicyRefusal, InvalidInputError) as exc:
                log.warning("%s could not show the read mark on %s: %s", ref.channel, ref.key, exc)
                continue
            marked.append(newest)
        return marked

    # ------------------------------------------------------------------ dispatch

    def resume(self, channel: str) -> None:
        """Resume dispatch on a channel paused after a credentials error (new credentials set)."""
        self._paused.pop(channel, None)
        self._wake.set()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until no queued send is left (all sent, failed or unknown). For tests and demos."""
        self._require_open()
        with anyio.fail_after(timeout):
            while True:
                due = await self.store.run(lambda tx: tx.next_outbox_due())
                if due is None:
                    return
                self._wake.set()
                await anyio.sleep(0.01)

    async def _dispatcher(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        limiter = anyio.CapacityLimiter(self.settings.dispatch_concurrency)
        task_status.started()
        while True:
            self._wake = anyio.Event()
            try:
                claimed = await self._claim()
            except OmnilinkError:
                log.exception("could not claim outbox rows; retrying")
                claimed = []
            if claimed:
                # Pieces of one message go out in order; different messages in parallel.
                by_message: dict[str, list[OutboxRow]] = {}
                for row in sorted(claimed, key=lambda r: (r.created_at, r.part_index)):
                    by_message.setdefault(row.message_id, []).append(row)
                async with anyio.create_task_group() as tg:
                    for rows in by_message.values():
                        tg.start_soon(self._dispatch_rows, rows, limiter)
                continue
            due = await self.store.run(lambda tx: tx.next_outbox_due())
            delay = self.settings.poll_interval
            if due is not None:
                delay = min(delay, max((due - utcnow()).total_seconds(), 0.0))
            with anyio.move_on_after(max(delay, 0.001)):
                await self._wake.wait()

    async def _claim(self) -> list[OutboxRow]:
        now = utcnow()
        paused = [name for name, until in self._paused.items() if until > now]
        lease_until = now + self.settings.lease
        return await self.store.run(
            lambda tx: tx.claim_outbox(
                now=now, lease_until=lease_until, limit=self.settings.dispatch_batch, exclude_channels=paused
            )
        )

    def _outbound(
        self, row: OutboxRow, message: Message, caps: Capabilities, history: list[Message]
    ) -> OutboundMessage:
        planned = plan(message.parts, caps)
        piece = planned.messages[min(row.part_index, len(planned.messages) - 1)]
        last_inbound = next(
            (m.provider_message_id for m in reversed(history) if m.direction is Direction.INBOUND), None
        )
        references = tuple(pid for m in history if m.id != message.id for pid in m.provider_ids)
        return OutboundMessage(
            message_id=message.id,
            conversation_id=message.conversation_id,
            part_index=row.part_index,
            account=message.account,
            thread_key=message.thread_key,
            recipient=self._recipient_for(message),
            parts=piece.parts,
            subject=message.subject,
            reply_to_provider_id=last_inbound,
            references=references,
            send_options=message.send_options,
            automatic=message.automatic,
            attempt=row.attempts + 1,
        )

    async def _record(self, fn: Callable[[Transaction], T]) -> T:
        """Run a dispatcher step (a load, a record), grouped with concurrent ones on single-writer stores."""
        _ = self.store  # LifecycleError unless the Hub is open (or closing: a last record)
        assert self._records is not None  # made with the store when the Hub opened
        return await self._records.run(fn)

    def _recipient_for(self, message: Message) -> str:
        return message.send_options.get("recipient", message.thread_key)

    async def _dispatch_rows(self, rows: list[OutboxRow], limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            for row in rows:
                try:
                    await self._dispatch_one(row)
                except Exception as exc:
                    log.exception("dispatch of %s failed unexpectedly", row.id)
                    if row.state is OutboxState.IN_FLIGHT:
                        await self._retry_lookup(row, exc)
                    else:
                        await self._reschedule(row, f"internal error: {exc!r}", None)

    async def _dispatch_one(self, row: OutboxRow) -> None:
        channel = self._channels.get(row.channel)
        if channel is None:
            await self._reschedule(row, f"channel {row.channel!r} is not configured in this process", 60.0)
            return

        def load(tx: Transaction) -> tuple[Message | None, list[Message], Contact | None]:
            msg = tx.get_message(row.message_id)
            if msg is None:
                return None, [], None
            limit = channel.thread_history
            hist = tx.thread_messages(msg.channel, msg.account, msg.thread_key, limit) if limit > 0 else []
            return msg, hist, tx.get_contact(msg.contact_id)

        message, history, contact = await self._record(load)
        if message is None:
            await self._finish(row, OutboxState.FAILED, None, "message missing")
            return
        if row.part_index > 0:
            earlier = await self.store.run(lambda tx: tx.outbox_for_message(row.message_id))
            blocking = [
                r for r in earlier if r.part_index < row.part_index and r.state is not OutboxState.DONE
            ]
            if any(r.state in (OutboxState.FAILED, OutboxState.UNKNOWN) for r in blocking):
                await self._fail(row, "an earlier piece of this message was not sent")
                return
            if blocking:
                # Wait for the earlier piece: pieces of one message never overtake each other.
                wait = max(((r.due_at - utcnow()).total_seconds() for r in blocking), default=0.0)
                await self._reschedule(row, "waiting for an earlier piece", max(wait, 0.05), count=False)
                return
        thread = ThreadRef(channel=message.channel, account=message.account, key=message.thread_key)
        if contact is not None and "recipient" not in message.send_options:
            message = message.model_copy(
                update={
                    "send_options": {
                        **message.send_options,
                        "recipient": self._recipient(contact, message.channel, thread),
                    }
                }
            )
        outbound = self._outbound(row, message, channel.capabilities_for(thread), history)
        if row.state is OutboxState.IN_FLIGHT:
            # A dispatcher died mid-send: never resend blindly.
            settled = await self._settle(channel, row, message, outbound, "a dispatcher stopped mid-send")
            if settled:
                return
        try:
            result = await channel.send(outbound)
        except CredentialsError as exc:
            self._paused[row.channel] = utcnow() + self.settings.credentials_pause
            await self.publish(
                AdapterHealth(
                    channel=row.channel,
                    account=message.account,
                    state=HealthState.CREDENTIALS_INVALID,
                    detail=str(exc),
                    at=self.now(),
                )
            )
            await self._reschedule(
                row, str(exc), self.settings.credentials_pause.total_seconds(), count=False
            )
        except RetryableSendError as exc:
            await self._reschedule(row, str(exc), exc.retry_after)
        except (SendError, InvalidInputError) as exc:
            if isinstance(exc, OutcomeUnknownError):
                if not await self._settle(channel, row, message, outbound, str(exc)):
                    await self._reschedule(row, str(exc), None)
            else:
                # Content or an address the provider will never take: retrying cannot help.
                await self._fail(row, str(exc))
        except Exception as exc:
            # An adapter bug after the request may have left: treat the outcome as unknown.
            log.exception("channel %s failed while sending %s", row.channel, row.id)
            if not await self._settle(channel, row, message, outbound, f"send failed: {exc!r}"):
                await self._reschedule(row, f"send failed: {exc!r}", None)
        else:
            await self._succeed(row, message, result)

    async def _settle(
        self, channel: Channel, row: OutboxRow, message: Message, outbound: OutboundMessage, why: str
    ) -> bool:
        """Find out whether a send whose outcome we lost happened.

        True when settled (recorded as sent, or as unknown for the helpdesk: never resent);
        False when the provider surely has no such send, so it may go out again.
        """
        try:
            found = await channel.reconcile(outbound)
        except OutcomeUnknownError as exc:
            await self._unknown(row, message, f"{why}; {exc}")
            return True
        except Exception as exc:
            await self._retry_lookup(row, exc)
            return True
        if found is None:
            return False
        await self._succeed(row, message, found)
        return True

    async def _retry_lookup(self, row: OutboxRow, exc: BaseException) -> None:
        """The lookup itself failed: keep the row in flight (never back to pending) and try the
        lookup again later; after max_attempts the outcome is unknown."""
        attempts = row.attempts + 1
        if attempts >= self.settings.max_attempts:
            message = await self.store.run(lambda tx: tx.get_message(row.message_id))
            if message is not None:
                await self._unknown(row, message, f"could not look the send up: {exc!r}")
            return
        retry = row.model_copy(
            update={
                "state": OutboxState.IN_FLIGHT,
                "attempts": attempts,
                "last_error": f"lookup failed: {exc!r}",
                "lease_until": utcnow() + timedelta(seconds=self._backoff(attempts)),
            }
        )
        await self._record(lambda tx: tx.update_outbox(retry))

    def _backoff(self, attempts: int) -> float:
        delay: float = self.settings.backoff_base * 2.0 ** max(attempts - 1, 0)
        return min(delay, self.settings.backoff_max)

    async def _reschedule(
        self, row: OutboxRow, error: str, retry_after: float | None, *, count: bool = True
    ) -> None:
        attempts = row.attempts + (1 if count else 0)
        if attempts >= self.settings.max_attempts:
            await self._fail(row, f"gave up after {attempts} attempts: {error}")
            return
        delay = max(retry_after or 0.0, self._backoff(attempts))
        updated = row.model_copy(
            update={
                "state": OutboxState.PENDING,
                "attempts": attempts,
                "last_error": error,
                "due_at": utcnow() + timedelta(seconds=delay),
                "lease_until": None,
            }
        )
        await self._record(lambda tx: tx.update_outbox(updated))

    async def _finish(
        self, row: OutboxRow, state: OutboxState, provider_id: str | None, error: str | None
    ) -> None:
        updated = row.model_copy(
            update={
                "state": state,
                "provider_message_id": provider_id,
                "last_error": error,
                "lease_until": None,
                "attempts": row.attempts + 1,
            }
        )
        await self._record(lambda tx: tx.update_outbox(updated))

    async def _succeed(self, row: OutboxRow, message: Message, result: SendResult) -> None:
        now = self.now()
        done = row.model_copy(
            update={
                "state": OutboxState.DONE,
                "provider_message_id": result.provider_message_id,
                "lease_until": None,
                "attempts": row.attempts + 1,
            }
        )

        def record(tx: Transaction) -> list[Event]:
            pid = result.provider_message_id
            # Lock order as in ingest: provider ids first, then the message.
            for known in sorted({pid, *result.other_provider_ids}):
                tx.lock_key(provider_lock_key(message.channel, message.account, known))
            tx.update_outbox(done)
            current = locked_message(tx, message.id)
            assert current is not None
            new_ids = [i for i in (pid, *result.other_provider_ids) if i not in current.provider_ids]
            details = {
                f"{k}" if row.part_index == 0 else f"{k}.{row.part_index}": v
                for k, v in result.details.items()
            }
            current = current.model_copy(
                update={
                    "provider_ids": current.provider_ids + tuple(new_ids),
                    "provider_message_id": current.provider_message_id or pid,
                    "send_details": {**current.send_details, **details},
                }
            )
            with_ids = current
            if not tx.exclusive:
                tx.update_message(with_ids)  # apply_status re-reads the message under its lock
            events: list[Event] = []
            rows = tx.outbox_for_message(message.id)
            if all(r.state is OutboxState.DONE for r in rows):
                current, events = apply_status(tx, current, result.status, now)
            for known in new_ids:
                pending = take_pending_status(tx, current.channel, current.account, known)
                if pending is not None:
                    current, more = apply_status(tx, current, pending[0], pending[1], pending[2])
                    events.extend(more)
            if tx.exclusive and current is with_ids:
                # No status change wrote the message (and its new provider ids): write it once.
                tx.update_message(with_ids)
            return events

        await self._publish_all(await self._record(record))

    async def _fail(self, row: OutboxRow, error: str) -> None:
        now = self.now()
        failed = row.model_copy(
            update={
                "state": OutboxState.FAILED,
                "last_error": error,
                "lease_until": None,
                "attempts": row.attempts + 1,
            }
        )

        def record(tx: Transaction) -> list[Event]:
            tx.update_outbox(failed)
            current = tx.get_message(row.message_id)
            if current is None:
                return []
            _, events = apply_status(tx, current, DeliveryStatus.FAILED, now, error)
            return events

        await self._publish_all(await self._record(record))

    async def _unknown(self, row: OutboxRow, message: Message, error: str) -> None:
        now = self.now()
        unknown = row.model_copy(
            update={"state": OutboxState.UNKNOWN, "last_error": error, "lease_until": None}
        )

        def record(tx: Transaction) -> list[Event]:
            tx.update_outbox(unknown)
            current = tx.get_message(message.id)
            assert current is not None
            _, events = apply_status(tx, current, DeliveryStatus.UNKNOWN, now, error)
            return events

        await self._publish_all(await self._record(record))

    # ------------------------------------------------------------------ metrics

    async def awaiting_reply(self, older_than: timedelta = timedelta(0)) -> dict[str, list[Conversation]]:
        """Conversations whose customer has waited longer than ``older_than``, by channel."""
        cutoff = self.now() - older_than
        found = await self.store.run(lambda tx: tx.awaiting_reply(cutoff))
        by_channel: dict[str, list[Conversation]] = {}
        for conv in found:
            by_channel.setdefault(conv.last_channel or "unknown", []).append(conv)
        return by_channel

    async def response_stats(self, limit: int = 1000) -> dict[str, ResponseStats]:
        """First-response and response times per channel over the latest conversations."""

        def collect(tx: Transaction) -> list[list[Message]]:
            return [tx.conversation_messages(c.id) for c in tx.list_conversations(limit=limit)]

        firsts: dict[str, list[float]] = {}
        responses: dict[str, list[float]] = {}
        counts: dict[str, int] = {}
        for messages in await self.store.run(collect):
            waiting_since: datetime | None = None
            waiting_channel = ""
            first_done = False
            for m in messages:
                if m.direction is Direction.INBOUND and not m.automatic:
                    if waiting_since is None:
                        waiting_since, waiting_channel = m.sent_at, m.channel
                        if not first_done:
                            counts[m.channel] = counts.get(m.channel, 0) + 1
                elif (
                    m.direction is Direction.OUTBOUND and m.author.kind is AuthorKind.AGENT and waiting_since
                ):
                    delta = (m.sent_at - waiting_since).total_seconds()
                    responses.setdefault(waiting_channel, []).append(delta)
                    if not first_done:
                        firsts.setdefault(waiting_channel, []).append(delta)
                        first_done = True
                    waiting_since = None
        out: dict[str, ResponseStats] = {}
        for name in sorted(set(counts) | set(responses)):
            f = sorted(firsts.get(name, []))
            r = responses.get(name, [])
            out[name] = ResponseStats(
                channel=name,
                conversations=counts.get(name, 0),
                first_response_median=statistics.median(f) if f else None,
                first_response_p90=f[min(len(f) - 1, math.ceil(0.9 * len(f)) - 1)] if f else None,
                response_median=statistics.median(r) if r else None,
            )
        return out

    # ------------------------------------------------------------------ ASGI

    def asgi_app(self) -> ASGIApp:
        """An ASGI app serving every channel's webhooks and extra routes.

        ``/webhooks/<channel>[/<path>]`` (any method) goes through ``handle_webhook``;
        ``/channels/<channel>/...`` goes to the channel's own app (sockets, widgets);
        ``/healthz`` answers 200 while the Hub is open.
        """
        from ._asgi import build_app

        return build_app(self)
