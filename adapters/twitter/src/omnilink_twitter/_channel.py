"""The X channel: DMs and public replies of one account, by webhook and/or by polling."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
from anyio.abc import TaskStatus
from pydantic import BaseModel

from omnilink import (
    AddressError,
    Capabilities,
    Channel,
    ChannelContext,
    CredentialsError,
    HealthState,
    Inbound,
    InboundHealth,
    InboundMessage,
    LifecycleError,
    MediaCapabilities,
    MediaPart,
    OutboundMessage,
    PayloadError,
    PermanentSendError,
    RateLimitedError,
    RetryableSendError,
    SendContext,
    SendError,
    SendResult,
    TextPart,
    ThreadRef,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
    plan,
)

from ._api import XApi
from ._config import TwitterConfig
from ._signing import SIGNATURE_HEADER, crc_response_token, verify_signature
from ._text import is_valid_post, weighted_length
from ._wire import (
    DM_EVENT_FIELDS,
    DM_PREFIX,
    MEDIA_FIELDS,
    POST_FIELDS,
    POST_PREFIX,
    PostFacts,
    PostIndex,
    classic_parent_ids,
    dm_thread_key,
    parse_activity,
    v2_dm_events,
    v2_posts,
)

DM_TEXT_MAX = 10_000

DM_CAPABILITIES = Capabilities(
    text_max=DM_TEXT_MAX,
    length_unit="characters",
    media=MediaCapabilities(
        max_count=1, types=frozenset({"image"}), max_bytes=5 * 1024 * 1024, with_text=True
    ),
    read_receipts=True,
    can_start_conversation=True,
)
"""Direct messages: 10,000 characters, one image uploaded first, read receipts."""

POST_CAPABILITIES = Capabilities(
    text_max=280,
    length_unit="weighted",
    measure=weighted_length,
    split_numbering=True,
    reply_to=True,
    can_start_conversation=False,
)
"""Public replies: 280 weighted units; longer text becomes a numbered reply chain."""

DM_INVITE_TEXT = "We'd like to help you privately. Send us a DM:"
_POLL_ERROR_BACKOFF = 300.0
CHAIN_WAIT = 30.0
"""How long a reply-chain piece waits for the previous piece to be posted."""


def dm_link(user_id: str) -> str:
    """A deep link that opens a DM to ``user_id`` (our account) in X's apps and web."""
    return f"https://twitter.com/messages/compose?recipient_id={user_id}"


def invite_to_dm(user_id: str, text: str = DM_INVITE_TEXT) -> str:
    """A public reply inviting the customer to continue in DMs with our account ``user_id``.

    The link counts 23 whatever its length, so the text stays short enough for a post.
    """
    return f"{text} {dm_link(user_id)}"


class TwitterChannel(Channel):
    """One X account: DMs (``dm:<conversation id>``) and public posts (``post:<root id>``)."""

    capabilities = DM_CAPABILITIES
    config: TwitterConfig

    def __init__(self, config: BaseModel, context: ChannelContext) -> None:
        assert isinstance(config, TwitterConfig)
        super().__init__(config, context)
        self.api = XApi(
            config,
            http=context.http,
            channel=context.name,
            now=context.now,
            get_state=context.get_state,
            set_state=context.set_state,
            report=self._report_health,
        )
        self._chain: dict[str, str] = {}
        """Provider ids of reply-chain pieces we posted, by ``message_id:part_index``."""
        self._chain_posted: dict[str, anyio.Event] = {}

    @property
    def account(self) -> str:
        return self.config.user_id

    async def _report_health(self, item: InboundHealth) -> None:
        await self.context.submit([item])

    # ----------------------------------------------------------------------- threads

    @property
    def default_account(self) -> str | None:
        return self.account

    def capabilities_for(self, thread: ThreadRef) -> Capabilities:
        """The capabilities of one thread: public posts and DMs have different limits."""
        return POST_CAPABILITIES if thread.key.startswith(POST_PREFIX) else DM_CAPABILITIES

    def thread_key_for(self, account: str, address: str) -> str:
        """The DM thread key for writing to ``address`` from ``account`` (``dm:<lo>-<hi>``)."""
        return dm_thread_key(account, self.normalize_address(address))

    def normalize_account(self, account: str) -> str:
        """Our account is a numeric user id, like a customer's address."""
        return self.normalize_address(account)

    def normalize_address(self, address: str) -> str:
        value = address.strip()
        if not value.isdigit() or len(value) > 20:
            raise AddressError(
                f"an X address is a numeric user id, not {address!r}", channel=self.name, address=address
            )
        return str(int(value))

    # ----------------------------------------------------------------------- webhooks

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        secret = self.config.consumer_secret.get_secret_value()
        if request.method == "GET":
            token = request.query.get("crc_token")
            if not token:
                raise PayloadError("a GET must carry crc_token", channel=self.name)
            body = json.dumps({"response_token": crc_response_token(secret, token)})
            return WebhookResult(WebhookResponse.json(body))
        if request.method != "POST":
            raise PayloadError(f"unexpected method {request.method}", channel=self.name, status=405)
        verify_signature(secret, request.body, request.header(SIGNATURE_HEADER), channel=self.name)
        try:
            payload = json.loads(request.body)
        except ValueError as exc:
            raise PayloadError(f"the body is not JSON: {exc}", channel=self.name) from exc
        if not isinstance(payload, dict):
            raise PayloadError("the body is not a JSON object", channel=self.name)
        for_user = str(payload.get("for_user_id", ""))
        if for_user != self.account:
            self.context.log.warning(
                "ignoring an activity for user %s (this channel is %s)", for_user, self.account
            )
            return WebhookResult(WebhookResponse())
        index = await self._load_index(classic_parent_ids(payload))
        try:
            items: list[Inbound] = parse_activity(payload, self.account, index)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise PayloadError(f"not an Account Activity payload: {exc!r}", channel=self.name) from exc
        await self._save_index(index)
        return WebhookResult(WebhookResponse(), tuple(items))

    async def _load_index(self, post_ids: set[str]) -> PostIndex:
        index = PostIndex()
        for post_id in post_ids:
            saved = await self.context.get_state(f"post:{post_id}")
            if saved:
                index.known[post_id] = PostFacts.decode(saved)
        return index

    async def _save_index(self, index: PostIndex) -> None:
        for post_id, facts in index.learned.items():
            await self.context.set_state(f"post:{post_id}", facts.encode())

    # ----------------------------------------------------------------------- sending

    async def check_send(self, context: SendContext) -> dict[str, str]:
        return {"surface": "post" if context.thread.key.startswith(POST_PREFIX) else "dm"}

    async def send(self, outbound: OutboundMessage) -> SendResult:
        if outbound.thread_key.startswith(POST_PREFIX):
            return await self._send_post(outbound)
        if outbound.thread_key.startswith(DM_PREFIX) or outbound.thread_key.isdigit():
            return await self._send_dm(outbound)
        raise PermanentSendError(f"unknown X thread key {outbound.thread_key!r}", channel=self.name)

    def _text(self, outbound: OutboundMessage) -> str:
        texts: list[str] = []
        for part in outbound.parts:
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif not isinstance(part, MediaPart):
                text = getattr(part, "text", None)
                if isinstance(text, str):
                    texts.append(text)
        return "\n\n".join(t for t in texts if t)

    async def _send_dm(self, outbound: OutboundMessage) -> SendResult:
        recipient = self.normalize_address(outbound.recipient)
        text = self._text(outbound)
        media = [p for p in outbound.parts if isinstance(p, MediaPart)]
        if len(text) > DM_TEXT_MAX:
            raise PermanentSendError(
                f"a DM carries at most {DM_TEXT_MAX} characters, not {len(text)}", channel=self.name
            )
        if len(media) > 1:
            raise PermanentSendError("a DM carries at most one attachment", channel=self.name)
        body: dict[str, Any] = {}
        if text:
            body["text"] = text
        if media:
            body["attachments"] = [{"media_id": await self._upload(media[0])}]
        if not body:
            raise PermanentSendError("nothing to send in this DM", channel=self.name)
        answer = await self.api.request(
            "POST", f"/2/dm_conversations/with/{recipient}/messages", json_body=body
        )
        data = answer.get("data") or {}
        event_id = data.get("dm_event_id")
        if not event_id:
            raise PermanentSendError(f"X answered without a dm_event_id: {answer}", channel=self.name)
        return SendResult(
            provider_message_id=str(event_id),
            details={"dm_conversation_id": str(data.get("dm_conversation_id", "")), "surface": "dm"},
        )

    async def _upload(self, media: MediaPart) -> str:
        """Upload one attachment with the v2 one-shot ``POST /2/media/upload``; its media id."""
        try:
            response = await self.context.http.get(media.url)
            response.raise_for_status()
        except Exception as exc:
            raise RetryableSendError(
                f"cannot fetch the attachment {media.url}: {exc!r}", channel=self.name
            ) from exc
        category = "dm_gif" if media.content_type == "image/gif" else "dm_image"
        answer = await self.api.request(
            "POST",
            "/2/media/upload",
            files={"media": (media.filename or "upload", response.content, media.content_type)},
            data={"media_category": category, "media_type": media.content_type},
        )
        data = answer.get("data") or {}
        media_id = data.get("id") or answer.get("media_id_string")
        if not media_id:
            raise PermanentSendError(f"X answered the upload without a media id: {answer}", channel=self.name)
        return str(media_id)

    async def _parent_for(self, outbound: OutboundMessage) -> str:
        root = outbound.thread_key.removeprefix(POST_PREFIX)
        if outbound.part_index > 0:
            # The Hub may dispatch the pieces of one message concurrently: wait (bounded) for
            # the previous piece, so each post answers the one before it.
            key = f"{outbound.message_id}:{outbound.part_index - 1}"
            previous = self._chain.get(key) or await self.context.get_state(f"chain:{key}")
            if previous is None:
                posted = self._chain_posted.setdefault(key, anyio.Event())
                with anyio.move_on_after(CHAIN_WAIT):
                    await posted.wait()
                previous = self._chain.get(key)
            if previous is None:
                raise RetryableSendError(
                    f"piece {outbound.part_index} waits for piece {outbound.part_index - 1} to be posted",
                    channel=self.name,
                    retry_after=2.0,
                )
            return previous
        return outbound.reply_to_provider_id or root

    async def _send_post(self, outbound: OutboundMessage) -> SendResult:
        text = self._text(outbound)
        if is_valid_post(text):
            pieces = [text]
        else:
            # The Hub planned with DM capabilities (it does not call capabilities_for yet):
            # split here into a numbered chain so every post is valid.
            try:
                planned = plan([TextPart(text=text)], POST_CAPABILITIES)
            except Exception as exc:
                raise PermanentSendError(f"this text cannot be posted: {exc}", channel=self.name) from exc
            pieces = [p.text for m in planned.messages for p in m.parts if isinstance(p, TextPart)]
        first_parent = parent = await self._parent_for(outbound)
        customer = self.normalize_address(outbound.recipient)
        root = outbound.thread_key.removeprefix(POST_PREFIX)
        posted: list[str] = []
        for piece in pieces:
            answer = await self.api.request(
                "POST", "/2/tweets", json_body={"text": piece, "reply": {"in_reply_to_tweet_id": parent}}
            )
            post_id = str((answer.get("data") or {}).get("id", ""))
            if not post_id:
                raise PermanentSendError(f"X answered without a post id: {answer}", channel=self.name)
            await self.context.set_state(f"post:{post_id}", PostFacts(root, customer).encode())
            posted.append(post_id)
            parent = post_id
        key = f"{outbound.message_id}:{outbound.part_index}"
        self._chain[key] = posted[-1]
        await self.context.set_state(f"chain:{key}", posted[-1])
        self._chain_posted.setdefault(key, anyio.Event()).set()
        if outbound.part_index > 0:
            # The previous piece's id has served its purpose: keep the state small.
            previous = f"{outbound.message_id}:{outbound.part_index - 1}"
            self._chain.pop(previous, None)
            self._chain_posted.pop(previous, None)
            await self.context.delete_state(f"chain:{previous}")
        details = {"surface": "post", "in_reply_to": first_parent}
        if len(posted) > 1:
            details["chain"] = ",".join(posted)
        return SendResult(
            provider_message_id=posted[0], other_provider_ids=tuple(posted[1:]), details=details
        )

    # ----------------------------------------------------------------------- polling

    @property
    def has_background_work(self) -> bool:
        return self.config.poll_dms or self.config.poll_mentions

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            delay = self.config.poll_interval
            try:
                await self.poll_once()
            except CredentialsError as exc:
                await self._report_health(
                    InboundHealth(
                        account=self.account, state=HealthState.CREDENTIALS_INVALID, detail=str(exc)
                    )
                )
                delay = max(delay, _POLL_ERROR_BACKOFF)
            except RateLimitedError as exc:
                delay = max(delay, float(exc.retry_after or delay))
            except SendError as exc:
                self.context.log.warning("polling X failed: %s", exc)
                retry_after = getattr(exc, "retry_after", None)
                if retry_after:
                    delay = max(delay, float(retry_after))
            except LifecycleError:
                # The Hub starts background work while it is still opening: try again shortly.
                delay = min(delay, 0.05)
            except Exception:
                self.context.log.exception("polling X failed unexpectedly; retrying in %s s", delay)
            await anyio.sleep(delay)

    async def poll_once(self) -> int:
        """Fetch what was missed since the stored cursors; returns how many items were submitted."""
        count = 0
        if self.config.poll_dms:
            count += await self.poll_dms()
        if self.config.poll_mentions:
            count += await self.poll_mentions()
        return count

    async def _collect(
        self, path: str, params: dict[str, str], cursor: str | None, parse: Any
    ) -> list[InboundMessage]:
        """Page back (newest first) until the cursor; return what is newer, oldest first."""
        newer: list[InboundMessage] = []
        token: str | None = None
        while True:
            page_params = dict(params)
            if token:
                page_params["pagination_token"] = token
            body = await self.api.request("GET", path, params=page_params, sending=False)
            reached = False
            for message in parse(body):
                if cursor is not None and int(message.provider_message_id) <= int(cursor):
                    reached = True
                    continue
                newer.append(message)
            token = (body.get("meta") or {}).get("next_token")
            if reached or not token:
                break
        newer.sort(key=lambda m: int(m.provider_message_id))
        return newer

    async def _submit_and_advance(self, key: str, messages: Sequence[InboundMessage]) -> int:
        if not messages:
            return 0
        await self.context.submit(messages)
        # Only after the Hub committed: a crash before this line re-reads, and the Hub dedupes.
        await self.context.set_state(key, max((m.provider_message_id for m in messages), key=int))
        return len(messages)

    async def poll_dms(self) -> int:
        """Catch up on DMs with ``GET /2/dm_events`` from the stored cursor."""
        cursor = await self.context.get_state("cursor:dm_events")
        params = {
            "dm_event.fields": DM_EVENT_FIELDS,
            "event_types": "MessageCreate",
            "expansions": "sender_id,attachments.media_keys",
            "user.fields": "name,username",
            "media.fields": MEDIA_FIELDS,
            "max_results": "100",
        }
        messages = await self._collect(
            "/2/dm_events", params, cursor, lambda body: v2_dm_events(body, self.account)
        )
        return await self._submit_and_advance("cursor:dm_events", messages)

    async def poll_mentions(self) -> int:
        """Catch up on mentions and replies with ``GET /2/users/{id}/mentions`` from ``since_id``."""
        cursor = await self.context.get_state("cursor:mentions")
        params = {
            "tweet.fields": POST_FIELDS,
            "expansions": "author_id,attachments.media_keys",
            "user.fields": "name,username",
            "media.fields": MEDIA_FIELDS,
            "max_results": "100",
        }
        if cursor:
            params["since_id"] = cursor
        index = PostIndex()
        messages = await self._collect(
            f"/2/users/{self.account}/mentions",
            params,
            cursor,
            lambda body: v2_posts(body, self.account, index),
        )
        await self._save_index(index)
        return await self._submit_and_advance("cursor:mentions", messages)
