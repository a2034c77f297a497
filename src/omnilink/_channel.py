"""The contract between the Hub and a channel adapter.

A plugin registers a ``ChannelSpec``; the Hub builds the channel object from it with the
validated config and a ``ChannelContext``. The channel turns webhooks into ``Inbound`` items,
sends planned messages, and answers the channel's policy questions. Everything stateful
(dedupe, contacts, threading, storage) stays in the Hub.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

from anyio.abc import TaskStatus
from pydantic import BaseModel, ConfigDict, Field

from ._capabilities import Capabilities
from ._errors import LifecycleError, OutcomeUnknownError, WebhookError
from ._models import (
    Author,
    Contact,
    Conversation,
    DeliveryStatus,
    Event,
    Handle,
    HealthState,
    Message,
    Part,
    Reaction,
    ThreadRef,
)

if TYPE_CHECKING:
    import httpx

    from ._hub import IngestReport

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
"""An ASGI application (scope, receive, send)."""


# --------------------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's HTTP request, as any web framework can hand it over."""

    method: str
    url: str
    """The full URL the provider requested (scheme, host, path, query)."""
    headers: Mapping[str, str]
    """Header names lower-cased."""
    body: bytes = b""
    path: str = ""
    """The part of the path after the channel's mount point (``/webhooks/<channel>``)."""

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        headers: Mapping[str, str] | Sequence[tuple[str, str]],
        body: bytes = b"",
        path: str = "",
    ) -> WebhookRequest:
        items = headers.items() if isinstance(headers, Mapping) else headers
        return cls(method.upper(), url, {k.lower(): v for k, v in items}, body, path)

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (the last value wins for repeated names)."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class WebhookResponse:
    """The HTTP answer to give the provider."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200) -> WebhookResponse:
        return cls(status, text.encode(), "text/plain; charset=utf-8")

    @classmethod
    def json(cls, body: str, status: int = 200) -> WebhookResponse:
        return cls(status, body.encode(), "application/json")


# --------------------------------------------------------------------------- inbound items


class _Inbound(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class InboundMessage(_Inbound):
    """A message a channel received, before the Hub dedupes, threads and stores it."""

    kind: Literal["message"] = "message"
    account: str
    """The business side: the number, page or mailbox that received it."""
    thread_key: str
    """The customer side of the thread on this channel."""
    sender: str
    """The customer's handle address on this channel (normalised)."""
    sender_name: str | None = None
    provider_message_id: str
    """With (channel, account), the dedupe key: a redelivery changes nothing."""
    parts: tuple[Part, ...]
    sent_at: datetime
    subject: str | None = None
    subject_key: str | None = None
    """The subject reduced for comparison; enables the subject rule when set."""
    references: tuple[str, ...] = ()
    """Provider ids of earlier messages this one answers, nearest last (email References)."""
    reply_to_provider_id: str | None = None
    conversation_hint: str | None = None
    """A conversation id from a token only we could have issued (a reply address …)."""
    echo: bool = False
    """A message the business account sent (our own send echoed back, or another tool's)."""
    echo_of: str | None = None
    """For our own sends echoed back: the omnilink message id carried in the send's metadata."""
    automatic: bool = False
    """An auto-reply or bounce: never a customer response, never answered automatically."""
    verified_handles: tuple[Handle, ...] = ()
    """Handles on other channels the provider verified as the sender's own (strong evidence)."""
    raw: dict[str, Any] | None = None


class InboundDelivery(_Inbound):
    """A delivery receipt: one message by provider id, or every earlier message by watermark."""

    kind: Literal["delivery"] = "delivery"
    account: str
    status: DeliveryStatus
    provider_message_id: str | None = None
    thread_key: str | None = None
    watermark: datetime | None = None
    """With ``thread_key``: every outbound message of that thread sent at or before this time."""
    error: str | None = None
    at: datetime
    raw: dict[str, Any] | None = None


class InboundTyping(_Inbound):
    kind: Literal["typing"] = "typing"
    account: str
    thread_key: str
    on: bool


class InboundReaction(_Inbound):
    kind: Literal["reaction"] = "reaction"
    account: str
    thread_key: str
    sender: str
    provider_message_id: str
    """The message reacted to."""
    reaction: Reaction


class InboundOptChange(_Inbound):
    """The customer opted out of (or back into) messages from ``account`` on this channel."""

    kind: Literal["opt_change"] = "opt_change"
    account: str
    address: str
    opted_out: bool
    keyword: str | None = None


class InboundDeletion(_Inbound):
    """The author deleted a message on the provider (a deleted post, an unsent message).

    The Hub removes the stored message's content (parts, raw payload, subject) and keeps a
    tombstone (ids, direction, times, ``deleted_at``), which is what providers such as X
    require of stored copies. A deletion that arrives before its message is kept, and the
    message is then never stored.
    """

    kind: Literal["deletion"] = "deletion"
    account: str
    provider_message_id: str
    thread_key: str | None = None
    at: datetime
    raw: dict[str, Any] | None = None


class InboundHealth(_Inbound):
    kind: Literal["health"] = "health"
    account: str | None = None
    state: HealthState
    detail: str = ""


Inbound = Annotated[
    InboundMessage
    | InboundDelivery
    | InboundTyping
    | InboundReaction
    | InboundOptChange
    | InboundDeletion
    | InboundHealth,
    Field(discriminator="kind"),
]
"""Anything a channel hands the Hub from a webhook, a poller or a socket."""


@dataclass(frozen=True)
class WebhookResult:
    """What a channel made of a webhook: items to ingest, and the answer once they are stored."""

    response: WebhookResponse
    items: Sequence[Inbound] = ()


# --------------------------------------------------------------------------- sending


class SendContext(_Inbound):
    """What a channel's policy check sees before a send."""

    conversation: Conversation
    contact: Contact
    thread: ThreadRef
    author: Author
    last_inbound_at: datetime | None
    """The customer's latest message on this thread, if any."""
    now: datetime
    other_channels: tuple[str, ...] = ()
    """Channels the contact has a handle on, besides this one (for remedies)."""
    automatic: bool = False
    last_inbound_automatic: bool = False
    """The thread's latest inbound message was an auto-reply or a bounce (never answer those
    automatically)."""


class OutboundMessage(_Inbound):
    """One provider message to send: a planned piece of an outbound ``Message``."""

    message_id: str
    conversation_id: str
    part_index: int = 0
    """Which planned piece of the message this is (a long reply may be several)."""
    account: str
    thread_key: str
    recipient: str
    """The customer's address on this channel."""
    parts: tuple[Part, ...]
    subject: str | None = None
    reply_to_provider_id: str | None = None
    """The provider id of the customer's latest message on this thread."""
    references: tuple[str, ...] = ()
    """Provider ids of the thread's earlier messages, oldest first (email References)."""
    send_options: dict[str, str] = Field(default_factory=dict)
    automatic: bool = False
    attempt: int = 1

    @property
    def idempotency_key(self) -> str:
        """Stable across retries of this piece; providers that support keys should send it."""
        return f"{self.message_id}:{self.part_index}"


class SendResult(_Inbound):
    """What the provider said to a send."""

    provider_message_id: str
    other_provider_ids: tuple[str, ...] = ()
    """Further ids the provider gave the same send (e.g. one per SMS part); receipts for any of
    them update the message."""
    status: DeliveryStatus = DeliveryStatus.SENT
    details: dict[str, str] = Field(default_factory=dict)
    """Channel facts about the send, e.g. ``segments`` and ``encoding`` for SMS."""


# --------------------------------------------------------------------------- context


class ChannelContext:
    """What the Hub gives a channel: its HTTP client, a way to submit items, its own state.

    Built by the Hub; a channel keeps it and must not outlive the Hub.
    """

    def __init__(
        self,
        *,
        name: str,
        http: httpx.AsyncClient,
        submit: Callable[[Sequence[Inbound]], Awaitable[IngestReport]],
        get_state: Callable[[str], Awaitable[str | None]],
        set_state: Callable[[str, str], Awaitable[None]],
        publish: Callable[[Event], Awaitable[None]],
        thread_messages: Callable[[str, str, int], Awaitable[list[Message]]],
        now: Callable[[], datetime],
        public_url: str | None,
        find_message: Callable[[str | None, str | None, str | None], Awaitable[Message | None]] | None = None,
        continue_on: Callable[[str, str, str, str], Awaitable[Conversation]] | None = None,
    ) -> None:
        self.name = name
        self.http = http
        self._submit = submit
        self._get_state = get_state
        self._set_state = set_state
        self._publish = publish
        self._thread_messages = thread_messages
        self._find_message = find_message
        self._continue_on = continue_on
        self.now = now
        """The Hub's clock (injectable in tests)."""
        self.public_url = public_url
        """The Hub's public base URL, for webhook URLs and callback URLs, when configured."""
        self.log = logging.getLogger(f"omnilink.channel.{name}")
        # Filled only by ``standalone`` contexts (for tests of a channel on its own).
        self.state: dict[str, str] = {}
        self.submitted: list[Inbound] = []
        self.published: list[Event] = []

    @classmethod
    def standalone(
        cls,
        name: str,
        *,
        http: httpx.AsyncClient | None = None,
        submit: Callable[[Sequence[Inbound]], Awaitable[IngestReport]] | None = None,
        now: Callable[[], datetime] | None = None,
        public_url: str | None = None,
        state: dict[str, str] | None = None,
    ) -> ChannelContext:
        """A context outside any Hub, for testing a channel object on its own.

        Durable state lives in the ``state`` dict (pass one to share it across restarts);
        submitted items are appended to ``submitted`` (unless ``submit`` replaces that);
        published events to ``published``.
        ``http`` may be None for channels that make no HTTP requests.
        """
        from ._models import utcnow
        from ._pipeline import IngestReport

        state = {} if state is None else state
        submitted: list[Inbound] = []
        published: list[Event] = []

        async def record(items: Sequence[Inbound]) -> IngestReport:
            submitted.extend(items)
            return IngestReport()

        async def get_state(key: str) -> str | None:
            return state.get(key)

        async def set_state(key: str, value: str) -> None:
            state[key] = value

        async def publish(event: Event) -> None:
            published.append(event)

        async def no_messages(account: str, thread_key: str, limit: int) -> list[Message]:
            return []

        context = cls(
            name=name,
            http=http,  # type: ignore[arg-type]
            submit=submit or record,
            get_state=get_state,
            set_state=set_state,
            publish=publish,
            thread_messages=no_messages,
            now=now or utcnow,
            public_url=public_url,
        )
        context.state = state
        context.submitted = submitted
        context.published = published
        return context

    async def submit(self, items: Sequence[Inbound]) -> IngestReport:
        """Run items through the receive pipeline (pollers, sockets); returns after commit."""
        return await self._submit(items)

    async def get_state(self, key: str) -> str | None:
        """Read a value this channel stored (cursors, UIDVALIDITY …); durable in the store."""
        value = await self._get_state(key)
        return value or None

    async def set_state(self, key: str, value: str) -> None:
        await self._set_state(key, value)

    async def delete_state(self, key: str) -> None:
        """Forget a value (``get_state`` answers None afterwards)."""
        await self._set_state(key, "")

    async def publish(self, event: Event) -> None:
        """Publish an ephemeral event (typing) to subscribers without storing it."""
        await self._publish(event)

    async def thread_messages(self, account: str, thread_key: str, limit: int = 200) -> list[Message]:
        """The latest stored messages of one thread on this channel, oldest first."""
        return await self._thread_messages(account, thread_key, limit)

    async def message(self, message_id: str) -> Message | None:
        """A stored message of this channel by its omnilink id."""
        return await self._find_message(message_id, None, None) if self._find_message else None

    async def message_by_provider_id(self, account: str, provider_id: str) -> Message | None:
        """A stored message of this channel by the provider's id."""
        return await self._find_message(None, account, provider_id) if self._find_message else None

    async def continue_on(
        self, conversation_id: str, channel: str, address: str, reason: str = ""
    ) -> Conversation:
        """Hand a conversation over to another channel (see ``Hub.continue_on``)."""
        if self._continue_on is None:
            raise LifecycleError("this context belongs to no Hub; continue_on needs one")
        return await self._continue_on(conversation_id, channel, address, reason)

    def webhook_url(self, path: str = "") -> str | None:
        """The public URL of this channel's webhook route, when the Hub knows its public URL."""
        if self.public_url is None:
            return None
        return f"{self.public_url.rstrip('/')}/webhooks/{self.name}{path}"


# --------------------------------------------------------------------------- channel


class Channel(abc.ABC):
    """Base of every channel object. Constructors do no I/O; ``open``/``aclose`` do."""

    capabilities: Capabilities
    thread_history: ClassVar[int] = 100
    """How many recent messages of a thread the Hub reads before each send, to fill
    ``OutboundMessage.reply_to_provider_id`` and ``references`` (email's In-Reply-To and
    References, a public reply's parent). A channel that uses neither sets 0 and saves the
    read: the cost of a send then stays flat however long the thread grows."""

    def __init__(self, config: BaseModel, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.context.name

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources (connections). Called once by the Hub before use."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Called once by the Hub, shielded, with a timeout."""

    @property
    def has_background_work(self) -> bool:
        """True when ``run`` should be started in the Hub's task group (pollers, servers)."""
        return False

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """Background work; call ``task_status.started()`` once ready. Runs until cancelled."""
        task_status.started()

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        """Verify and parse a provider request into items. Raise WebhookError to refuse it."""
        raise WebhookError(f"channel {self.name!r} has no webhooks", channel=self.name, status=404)

    @property
    def default_account(self) -> str | None:
        """The business account used when a caller names none (the only one, if just one)."""
        return None

    def normalize_account(self, account: str) -> str:
        """The canonical form of a business account name (e.g. our number in E.164)."""
        return account

    def thread_key_for(self, account: str, address: str) -> str:
        """The thread key of a new thread with the customer at ``address`` (default: the address)."""
        return address

    def capabilities_for(self, thread: ThreadRef) -> Capabilities:
        """Capabilities for one thread; channels with several surfaces (posts vs DMs) override."""
        return self.capabilities

    def normalize_address(self, address: str) -> str:
        """The canonical form of a customer address on this channel; AddressError if invalid."""
        return address

    async def check_send(self, context: SendContext) -> dict[str, str]:
        """Refuse a send with a PolicyRefusal, or return send options to record (e.g. a tag)."""
        return {}

    @abc.abstractmethod
    async def send(self, outbound: OutboundMessage) -> SendResult:
        """Send one planned message. Raise a SendError subclass on failure."""

    async def reconcile(self, outbound: OutboundMessage) -> SendResult | None:
        """After a crash mid-send: look the send up at the provider.

        Return the result if the provider has it, None if it surely does not (safe to resend),
        or raise OutcomeUnknownError when the provider allows no lookup.
        """
        raise OutcomeUnknownError(
            f"channel {self.name!r} cannot look up a send; its outcome is unknown", channel=self.name
        )

    async def send_typing(self, account: str, thread_key: str, on: bool) -> None:  # noqa: B027
        """Show or hide a typing indicator to the customer, where the channel can."""

    async def mark_read(self, message: Message) -> None:  # noqa: B027
        """Show the customer that the business read their messages up to ``message`` (an
        inbound message of this channel), where the channel can: Messenger's ``mark_seen``, the
        live chat widget's "Read". Channels without read receipts (SMS, email) do nothing."""

    def asgi_app(self) -> ASGIApp | None:
        """Extra routes the channel serves under ``/channels/<name>`` (sockets, widgets)."""
        return None


@dataclass(frozen=True)
class ChannelSpec:
    """What a plugin registers for one channel."""

    name: str
    """The channel's name, e.g. ``sms``; unique in a Hub."""
    config_model: type[BaseModel]
    """Validates the channel's settings."""
    factory: Callable[[Any, ChannelContext], Channel]
    """Builds the channel object from a validated config and the Hub's context. No I/O."""
    capabilities: Capabilities
    """What the channel can carry with default settings (the object may refine it)."""
    summary: str = ""
    distribution: str | None = None
    """The distribution that registered it; filled in by the plugin host."""
