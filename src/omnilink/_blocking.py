"""A blocking facade over the Hub for synchronous code (Django views, Flask handlers, scripts).

The Hub runs in an event loop on a background thread (an anyio blocking portal); every method
here submits the matching coroutine to it and waits. One facade, one Hub, any number of
calling threads.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._channel import WebhookRequest, WebhookResponse
from ._errors import LifecycleError
from ._hub import Content, ConversationPage, Hub
from ._models import Author, Conversation, Message

T = TypeVar("T")


class BlockingHub:
    """Use a Hub from synchronous code.

    ```python
    hub = BlockingHub(Hub(store=SQLiteStore("helpdesk.sqlite3"), channels={...}))
    with hub:
        response = hub.handle_webhook("sms", WebhookRequest.build(...))
        hub.reply(conversation_id, "On it!")
    ```
    """

    def __init__(self, hub: Hub, *, backend: str = "asyncio") -> None:
        self.hub = hub
        self._backend = backend
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._hub_cm: AbstractContextManager[Hub] | None = None

    def __enter__(self) -> BlockingHub:
        if self._portal is not None:
            raise LifecycleError("this BlockingHub is already open")
        self._portal_cm = start_blocking_portal(self._backend)
        portal = self._portal_cm.__enter__()
        # The Hub's task group must be entered and exited by one task: the portal's wrapper
        # keeps the whole ``async with hub`` inside a single task.
        self._hub_cm = portal.wrap_async_context_manager(self.hub)
        try:
            self._hub_cm.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        self._portal = portal
        return self

    def __exit__(self, *exc: object) -> None:
        if self._portal is None or self._portal_cm is None or self._hub_cm is None:
            return
        try:
            self._hub_cm.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)
            self._portal = None

    def _call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        if self._portal is None:
            raise LifecycleError("use the BlockingHub inside 'with hub:'")

        async def call() -> T:
            return await fn(*args, **kwargs)

        return self._portal.call(call)

    def handle_webhook(self, channel: str, request: WebhookRequest) -> WebhookResponse:
        """See ``Hub.handle_webhook``."""
        return self._call(self.hub.handle_webhook, channel, request)

    def reply(
        self,
        conversation_id: str,
        content: Content,
        *,
        channel: str | None = None,
        author: Author | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """See ``Hub.reply``."""
        return self._call(
            self.hub.reply,
            conversation_id,
            content,
            channel=channel,
            author=author,
            idempotency_key=idempotency_key,
        )

    def start_conversation(self, channel: str, address: str, content: Content, **kwargs: Any) -> Message:
        """See ``Hub.start_conversation``."""
        return self._call(self.hub.start_conversation, channel, address, content, **kwargs)

    def continue_on(self, conversation_id: str, channel: str, address: str, **kwargs: Any) -> Conversation:
        """See ``Hub.continue_on``."""
        return self._call(self.hub.continue_on, conversation_id, channel, address, **kwargs)

    def conversation(self, conversation_id: str) -> Conversation:
        return self._call(self.hub.conversation, conversation_id)

    def conversations(self, **kwargs: Any) -> list[Conversation]:
        return self._call(self.hub.conversations, **kwargs)

    def conversation_page(self, **kwargs: Any) -> ConversationPage:
        return self._call(self.hub.conversation_page, **kwargs)

    def messages(self, conversation_id: str) -> list[Message]:
        return self._call(self.hub.messages, conversation_id)

    def message(self, message_id: str) -> Message:
        return self._call(self.hub.message, message_id)

    def transcript(self, conversation_id: str) -> str:
        return self._call(self.hub.transcript, conversation_id)

    def mark_read(self, conversation_id: str, *, up_to: str | None = None) -> list[Message]:
        return self._call(self.hub.mark_read, conversation_id, up_to=up_to)

    def drain(self, timeout: float = 10.0) -> None:
        self._call(self.hub.drain, timeout)

    def awaiting_reply(self, older_than: timedelta = timedelta(0)) -> Mapping[str, list[Conversation]]:
        return self._call(self.hub.awaiting_reply, older_than)
