"""``FakeX``: an in-process X API v2 and Account Activity webhook source for tests.

It enforces what X enforces: OAuth 1.0a signatures (checked with oauthlib's server-side
signature functions) or OAuth 2.0 bearer tokens (with refresh-token rotation), 280 weighted
units per post, 10,000 characters and one uploaded attachment per DM, duplicate posts, users
who do not accept DMs, honest ``x-rate-limit-*`` headers counted per window, 429s and the
usage cap on demand. It serves ``GET /2/dm_events`` and mentions with pagination, and builds
signed Account Activity deliveries (DMs, posts, echoes of our sends, typing, reads) and CRC
challenges.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from omnilink import WebhookRequest
from omnilink.testing import FakeProvider

from .._signing import SIGNATURE_HEADER, sign_body
from .._text import is_valid_post, weighted_length
from .._wire import dm_conversation_id, make_snowflake

PROBLEMS = "https://api.twitter.com/2/problems/"
DM_TEXT_MAX = 10_000

DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    "dm_send": (200, 900),
    "tweets": (200, 900),
    "upload": (500, 900),
    "dm_events": (300, 900),
    "mentions": (180, 900),
}
"""Per-endpoint (requests, window seconds) the fake counts, per user as X does."""


@dataclass
class FakeUser:
    id: str
    name: str
    username: str
    accepts_dms: bool = True


@dataclass
class DmEvent:
    id: str
    sender_id: str
    conversation_id: str
    text: str
    created_at: datetime
    media_key: str | None = None


@dataclass
class Post:
    id: str
    author_id: str
    text: str
    created_at: datetime
    conversation_id: str
    parent_id: str | None = None
    in_reply_to_user_id: str | None = None
    media_key: str | None = None


@dataclass
class _Window:
    start: float
    count: int = 0


@dataclass
class _Media:
    key: str
    type: str
    url: str


@dataclass
class _Uploaded:
    id: str
    category: str
    content_type: str
    size: int


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _ms(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


def _classic_date(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")


@dataclass
class FakeXSettings:
    consumer_key: str = "fake-consumer-key"
    consumer_secret: str = "fake-consumer-secret"
    access_token: str = "fake-access-token"
    access_token_secret: str = "fake-access-token-secret"
    user_id: str = "1000000001"
    name: str = "Acme Support"
    username: str = "acmehelp"
    client_id: str = "fake-client-id"
    limits: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_LIMITS))


class FakeX(FakeProvider):
    """A fake of the X API v2 for one account of ours (``settings.user_id``) and its customers."""

    hosts = ("api.x.com", "api.twitter.com", "pbs.twimg.com", "video.twimg.com", "files.example")
    api_hosts = ("api.x.com", "api.twitter.com")

    def __init__(self, settings: FakeXSettings | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.settings = settings or FakeXSettings()
        s = self.settings
        self.users: dict[str, FakeUser] = {s.user_id: FakeUser(s.user_id, s.name, s.username)}
        self.dm_events: list[DmEvent] = []
        self.posts: dict[str, Post] = {}
        self.media: dict[str, _Media] = {}
        self.uploads: dict[str, _Uploaded] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        """Files the fake serves on ``https://files.example/<name>`` (attachments to upload)."""
        self.sent_dms: list[DmEvent] = []
        self.sent_posts: list[Post] = []
        self.sent_texts: list[str] = []
        """Texts of every DM and post the fake accepted from us, in order."""
        self.usage_capped = False
        self.public_url = "https://helpdesk.example"
        """Where the Hub receives webhooks; deliveries are addressed to ``<public_url>/webhooks/twitter``."""
        self.oauth2_tokens: set[str] = set()
        self.refresh_token: str | None = None
        self.refresh_count = 0
        self._nonces: set[tuple[str, str]] = set()
        self._windows: dict[str, _Window] = {}
        self._seq = itertools.count(1)

    # ----------------------------------------------------------------------- setup

    def add_user(self, user_id: str, name: str | None = None, *, accepts_dms: bool = True) -> FakeUser:
        user = FakeUser(user_id, name or f"Customer {user_id}", f"user{user_id}", accepts_dms)
        self.users[user_id] = user
        return user

    def issue_oauth2(self) -> tuple[str, str]:
        """Issue a fresh OAuth 2.0 access token and refresh token (the only valid refresh token)."""
        access = "at2-" + secrets.token_hex(8)
        self.oauth2_tokens.add(access)
        self.refresh_token = "rt2-" + secrets.token_hex(8)
        return access, self.refresh_token

    def expire_access_tokens(self) -> None:
        self.oauth2_tokens.clear()

    def revoke_refresh_token(self) -> None:
        self.refresh_token = None

    def add_file(self, name: str, content: bytes, content_type: str) -> str:
        self.files[name] = (content, content_type)
        return f"https://files.example/{name}"

    def _id(self, at: datetime | None = None) -> str:
        return make_snowflake(at or self.now(), next(self._seq))

    # ----------------------------------------------------------------------- customer traffic

    def customer_dm(
        self, sender: str, text: str, *, at: datetime | None = None, photo_url: str | None = None
    ) -> DmEvent:
        """A customer sends us a DM; returns the event (also listed by ``GET /2/dm_events``)."""
        if sender not in self.users:
            self.add_user(sender)
        at = at or self.now()
        media_key = None
        if photo_url is not None:
            media_key = f"3_{self._id(at)}"
            self.media[media_key] = _Media(media_key, "photo", photo_url)
        event = DmEvent(
            self._id(at), sender, dm_conversation_id(sender, self.settings.user_id), text, at, media_key
        )
        self.dm_events.append(event)
        return event

    def customer_post(
        self, author: str, text: str, *, in_reply_to: str | None = None, at: datetime | None = None
    ) -> Post:
        """A customer posts (mentioning us, or replying to a post); returns the post."""
        if author not in self.users:
            self.add_user(author)
        return self._create_post(author, text, in_reply_to, at or self.now())

    def _create_post(self, author: str, text: str, parent_id: str | None, at: datetime) -> Post:
        parent = self.posts.get(parent_id) if parent_id else None
        post_id = self._id(at)
        post = Post(
            id=post_id,
            author_id=author,
            text=text,
            created_at=at,
            conversation_id=parent.conversation_id if parent else post_id,
            parent_id=parent_id,
            in_reply_to_user_id=parent.author_id if parent else None,
        )
        self.posts[post_id] = post
        return post

    # ----------------------------------------------------------------------- webhooks

    def webhook_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/webhooks/twitter"

    def signed_request(
        self, payload: dict[str, Any], *, url: str | None = None, secret: str | None = None
    ) -> WebhookRequest:
        """A POST exactly as X's Account Activity API would send ``payload``."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        signature = sign_body(secret or self.settings.consumer_secret, body)
        headers = {"content-type": "application/json; charset=utf-8", SIGNATURE_HEADER: signature}
        return WebhookRequest.build("POST", url or self.webhook_url(), headers, body)

    def crc_request(self, token: str = "challenge-token", *, url: str | None = None) -> WebhookRequest:
        query = urlencode({"crc_token": token, "nonce": secrets.token_hex(4)})
        return WebhookRequest.build("GET", f"{url or self.webhook_url()}?{query}", {})

    def _users_map(self, ids: Iterable[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for uid in ids:
            user = self.users.get(uid)
            if user is not None:
                out[uid] = {"id": uid, "name": user.name, "screen_name": user.username}
        return out

    def classic_dm(self, event: DmEvent) -> dict[str, Any]:
        a, b = event.conversation_id.split("-")
        recipient = b if event.sender_id == a else a
        data: dict[str, Any] = {
            "text": event.text,
            "entities": {"hashtags": [], "urls": [], "user_mentions": []},
        }
        if event.media_key:
            media = self.media[event.media_key]
            data["attachment"] = {
                "type": "media",
                "media": {
                    "id_str": event.media_key.split("_", 1)[1],
                    "type": media.type,
                    "media_url_https": media.url,
                },
            }
        return {
            "type": "message_create",
            "id": event.id,
            "created_timestamp": _ms(event.created_at),
            "message_create": {
                "target": {"recipient_id": recipient},
                "sender_id": event.sender_id,
                "message_data": data,
            },
        }

    def classic_post(self, post: Post) -> dict[str, Any]:
        user = self.users[post.author_id]
        tweet: dict[str, Any] = {
            "created_at": _classic_date(post.created_at),
            "id": int(post.id),
            "id_str": post.id,
            "text": post.text,
            "in_reply_to_status_id": int(post.parent_id) if post.parent_id else None,
            "in_reply_to_status_id_str": post.parent_id,
            "in_reply_to_user_id_str": post.in_reply_to_user_id,
            "user": {"id": int(user.id), "id_str": user.id, "name": user.name, "screen_name": user.username},
            "timestamp_ms": _ms(post.created_at),
            "truncated": False,
        }
        return tweet

    def activity(
        self,
        *,
        dms: Sequence[DmEvent] = (),
        posts: Sequence[Post] = (),
        typing: Sequence[str] = (),
        reads: Sequence[tuple[str, str]] = (),
        deleted: Sequence[Post] = (),
    ) -> dict[str, Any]:
        """An Account Activity payload for us: DMs, posts, typing (by sender), reads
        ((reader, last_read_event_id)) and deleted posts; deliver it with ``signed_request``."""
        me = self.settings.user_id
        payload: dict[str, Any] = {"for_user_id": me}
        if dms:
            payload["direct_message_events"] = [self.classic_dm(e) for e in dms]
            payload["users"] = self._users_map({me} | {e.sender_id for e in dms})
        if posts:
            payload["tweet_create_events"] = [self.classic_post(p) for p in posts]
        now_ms = _ms(self.now())
        if typing:
            payload["direct_message_indicate_typing_events"] = [
                {"created_timestamp": now_ms, "sender_id": s, "target": {"recipient_id": me}} for s in typing
            ]
            payload.setdefault("users", {}).update(self._users_map(typing))
        if reads:
            payload["direct_message_mark_read_events"] = [
                {
                    "created_timestamp": now_ms,
                    "sender_id": r,
                    "target": {"recipient_id": me},
                    "last_read_event_id": e,
                }
                for r, e in reads
            ]
        if deleted:
            payload["tweet_delete_events"] = [
                {"status": {"id": p.id, "user_id": p.author_id}, "timestamp_ms": now_ms} for p in deleted
            ]
        return payload

    def dm_webhook(self, *events: DmEvent) -> WebhookRequest:
        return self.signed_request(self.activity(dms=events))

    def post_webhook(self, *posts: Post) -> WebhookRequest:
        return self.signed_request(self.activity(posts=posts))

    def delete_post(self, post: Post) -> WebhookRequest:
        """Its author deletes ``post``: X removes it and tells us (``tweet_delete_events``)."""
        self.posts.pop(post.id, None)
        return self.signed_request(self.activity(deleted=[post]))

    @staticmethod
    def as_x_delivers(
        requests: Sequence[WebhookRequest], *, seed: int = 0, duplicates: int = 1
    ) -> list[WebhookRequest]:
        """The deliveries shuffled, with ``duplicates`` extra copies of some: X retries and does
        not promise order."""
        rng = random.Random(seed)
        out = list(requests)
        out.extend(rng.choice(requests) for _ in range(duplicates) if requests)
        rng.shuffle(out)
        return out

    def echo_webhook(self) -> WebhookRequest:
        """Everything we sent, echoed back in one delivery (as X does for the subscribed user)."""
        return self.signed_request(self.activity(dms=self.sent_dms, posts=self.sent_posts))

    # ----------------------------------------------------------------------- HTTP helpers

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/2/dm_conversations/with/{participant_id}/messages", self._send_dm, methods=["POST"]),
            Route("/2/tweets", self._create_tweet, methods=["POST"]),
            Route("/2/media/upload", self._upload, methods=["POST"]),
            Route("/2/dm_events", self._list_dm_events, methods=["GET"]),
            Route("/2/users/{user_id}/mentions", self._mentions, methods=["GET"]),
            Route("/2/oauth2/token", self._token, methods=["POST"]),
            Route("/{name:path}", self._file, methods=["GET"]),
        ]

    def _problem(
        self, status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any
    ) -> Response:
        body = {"title": title, "detail": detail, "type": type_, "status": status, **extra}
        return JSONResponse(body, status_code=status, media_type="application/problem+json")

    async def _authorise(self, request: Request, body: bytes) -> Response | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            if header[7:] in self.oauth2_tokens:
                return None
            return self._problem(401, "Unauthorized", "Unauthorized")
        if not header.startswith("OAuth "):
            return self._problem(401, "Unauthorized", "Unauthorized")
        params = dict(oauth_utils.parse_authorization_header(header))
        s = self.settings
        if params.get("oauth_consumer_key") != s.consumer_key or params.get("oauth_token") != s.access_token:
            return self._problem(401, "Unauthorized", "Unauthorized")
        nonce = (params.get("oauth_nonce", ""), params.get("oauth_timestamp", ""))
        if nonce in self._nonces or params.get("oauth_signature_method") != "HMAC-SHA1":
            return self._problem(401, "Unauthorized", "Unauthorized")
        form = None
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = body.decode()
        collected = oauth_signature.collect_parameters(
            uri_query=request.url.query, body=form, headers={"Authorization": header}
        )
        signed = oauth_utils.unescape(params.get("oauth_signature", ""))
        # The client signed the URL it asked for: ours, or X's own when a test or the demo
        # redirects X's hosts to this fake on 127.0.0.1.
        query = f"?{request.url.query}" if request.url.query else ""
        candidates = [str(request.url)] + [
            f"https://{host}{request.url.path}{query}" for host in self.api_hosts
        ]
        if not any(
            oauth_signature.verify_hmac_sha1(
                cast(Any, _SignedRequest(request.method, uri, collected, signed)),
                s.consumer_secret,
                s.access_token_secret,
            )
            for uri in candidates
        ):
            return self._problem(401, "Unauthorized", "Unauthorized")
        self._nonces.add(nonce)
        return None

    def _limit(self, endpoint: str) -> tuple[Response | None, dict[str, str]]:
        """Count one request against ``endpoint``'s window; a 429 when the window is spent."""
        if self.usage_capped:
            return (
                self._problem(
                    429,
                    "UsageCapExceeded",
                    "Usage cap exceeded: Monthly product cap",
                    PROBLEMS + "usage-capped",
                    period="Monthly",
                    scope="Product",
                ),
                {},
            )
        limit, seconds = self.settings.limits.get(endpoint, (10_000, 900))
        now = self.now().timestamp()
        window = self._windows.get(endpoint)
        if window is None or now >= window.start + seconds:
            window = self._windows[endpoint] = _Window(start=now)
        reset = str(int(window.start + seconds))
        if window.count >= limit:
            headers = {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": reset,
            }
            return self._problem(429, "Too Many Requests", "Too Many Requests"), headers
        window.count += 1
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(limit - window.count),
            "x-rate-limit-reset": reset,
        }
        return None, headers

    async def _guard(self, request: Request, endpoint: str) -> tuple[Response | None, dict[str, str], bytes]:
        body = await request.body()
        refused = await self._authorise(request, body)
        if refused is not None:
            return refused, {}, body
        fault = self.take_fault(endpoint)
        if fault is not None:
            payload = (
                fault.body
                if fault.body is not None
                else {"title": "Fault", "detail": "injected", "type": "about:blank"}
            )
            return JSONResponse(payload, status_code=fault.status, headers=fault.headers), {}, body
        limited, headers = self._limit(endpoint)
        if limited is not None:
            limited.headers.update(headers)
            return limited, headers, body
        return None, headers, body

    # ----------------------------------------------------------------------- endpoints

    async def _send_dm(self, request: Request) -> Response:
        refused, headers, body = await self._guard(request, "dm_send")
        if refused is not None:
            return refused
        participant = request.path_params["participant_id"]
        try:
            data = json.loads(body)
        except ValueError:
            return self._problem(400, "Invalid Request", "body is not JSON", PROBLEMS + "invalid-request")
        text = data.get("text")
        attachments = data.get("attachments") or []
        if not text and not attachments:
            return self._problem(
                400, "Invalid Request", "text or attachments is required", PROBLEMS + "invalid-request"
            )
        if text is not None and len(text) > DM_TEXT_MAX:
            return self._problem(
                400, "Invalid Request", f"text is longer than {DM_TEXT_MAX}", PROBLEMS + "invalid-request"
            )
        if len(attachments) > 1:
            return self._problem(
                400, "Invalid Request", "only one attachment is supported", PROBLEMS + "invalid-request"
            )
        media_key = None
        for attachment in attachments:
            uploaded = self.uploads.get(str(attachment.get("media_id")))
            if uploaded is None or not uploaded.category.startswith("dm_"):
                return self._problem(400, "Invalid Request", "unknown media id", PROBLEMS + "invalid-request")
            media_key = f"3_{uploaded.id}"
            self.media[media_key] = _Media(media_key, "photo", f"https://pbs.twimg.com/dm/{uploaded.id}.jpg")
        user = self.users.get(participant)
        if user is None:
            return self._problem(
                400, "Invalid Request", "participant not found", PROBLEMS + "invalid-request"
            )
        if not user.accepts_dms:
            return self._problem(
                403,
                "Forbidden",
                "You are not permitted to send Direct Messages to this user.",
                PROBLEMS + "not-authorized-for-resource",
            )
        me = self.settings.user_id
        event = DmEvent(
            self._id(), me, dm_conversation_id(me, participant), text or "", self.now(), media_key
        )
        self.dm_events.append(event)
        self.sent_dms.append(event)
        self.sent_texts.append(event.text)
        return JSONResponse(
            {"data": {"dm_conversation_id": event.conversation_id, "dm_event_id": event.id}},
            201,
            headers=headers,
        )

    async def _create_tweet(self, request: Request) -> Response:
        refused, headers, body = await self._guard(request, "tweets")
        if refused is not None:
            return refused
        data = json.loads(body or b"{}")
        text = str(data.get("text", ""))
        if not is_valid_post(text):
            return self._problem(
                400,
                "Invalid Request",
                f"text is not a valid post (weighted length {weighted_length(text)})",
                PROBLEMS + "invalid-request",
            )
        me = self.settings.user_id
        if any(p.author_id == me and p.text == text for p in self.posts.values()):
            return self._problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
        parent_id = (data.get("reply") or {}).get("in_reply_to_tweet_id")
        if parent_id is not None and str(parent_id) not in self.posts:
            return self._problem(
                400,
                "Invalid Request",
                "the post you are replying to does not exist",
                PROBLEMS + "invalid-request",
            )
        post = self._create_post(me, text, str(parent_id) if parent_id else None, self.now())
        self.sent_posts.append(post)
        self.sent_texts.append(text)
        return JSONResponse(
            {"data": {"id": post.id, "text": text, "edit_history_tweet_ids": [post.id]}}, 201, headers=headers
        )

    async def _upload(self, request: Request) -> Response:
        refused, headers, body = await self._guard(request, "upload")
        if refused is not None:
            return refused
        fields = _multipart(request.headers.get("content-type", ""), body)
        category = fields.get("media_category", (b"tweet_image", ""))[0].decode()
        if "media" not in fields:
            return self._problem(400, "Invalid Request", "media is required", PROBLEMS + "invalid-request")
        content, part_type = fields["media"]
        content_type = (
            fields.get("media_type", (part_type.encode(), ""))[0].decode() or "application/octet-stream"
        )
        if content_type.startswith("image/") and len(content) > 5 * 1024 * 1024:
            return self._problem(
                400, "Invalid Request", "image larger than 5 MB", PROBLEMS + "invalid-request"
            )
        if not category.startswith(("dm_", "tweet_", "amplify_", "subtitles")):
            return self._problem(
                400, "Invalid Request", f"unknown media_category {category}", PROBLEMS + "invalid-request"
            )
        media_id = self._id()
        self.uploads[media_id] = _Uploaded(media_id, category, content_type, len(content))
        return JSONResponse(
            {"data": {"id": media_id, "media_key": f"3_{media_id}", "expires_after_secs": 86400}},
            200,
            headers=headers,
        )

    def _page(self, items: list[Any], request: Request) -> tuple[list[Any], str | None]:
        size = max(1, min(100, int(request.query_params.get("max_results", "100"))))
        token = request.query_params.get("pagination_token")
        start = int(token[1:]) if token and token.startswith("p") else 0
        page = items[start : start + size]
        return page, (f"p{start + size}" if start + size < len(items) else None)

    async def _list_dm_events(self, request: Request) -> Response:
        refused, headers, _ = await self._guard(request, "dm_events")
        if refused is not None:
            return refused
        oldest = self.now() - timedelta(days=30)
        events = sorted((e for e in self.dm_events if e.created_at >= oldest), key=lambda e: -int(e.id))
        page, next_token = self._page(events, request)
        data = []
        media = []
        for e in page:
            item: dict[str, Any] = {
                "id": e.id,
                "event_type": "MessageCreate",
                "text": e.text,
                "sender_id": e.sender_id,
                "dm_conversation_id": e.conversation_id,
                "created_at": _iso(e.created_at),
            }
            if e.media_key:
                item["attachments"] = {"media_keys": [e.media_key]}
                m = self.media[e.media_key]
                media.append({"media_key": m.key, "type": m.type, "url": m.url})
            data.append(item)
        users = [
            {"id": u["id"], "name": u["name"], "username": u["screen_name"]}
            for u in self._users_map({e.sender_id for e in page}).values()
        ]
        body: dict[str, Any] = {
            "data": data,
            "includes": {"users": users, "media": media},
            "meta": {"result_count": len(data)},
        }
        if next_token:
            body["meta"]["next_token"] = next_token
        if not data:
            body = {"meta": {"result_count": 0}}
        return JSONResponse(body, headers=headers)

    async def _mentions(self, request: Request) -> Response:
        refused, headers, _ = await self._guard(request, "mentions")
        if refused is not None:
            return refused
        me = self.settings.user_id
        if request.path_params["user_id"] != me:
            return self._problem(
                403, "Forbidden", "You can only read your own mentions here", PROBLEMS + "client-forbidden"
            )
        since = request.query_params.get("since_id")
        handle = "@" + self.settings.username.lower()
        posts = [
            p
            for p in self.posts.values()
            if p.author_id != me
            and (handle in p.text.lower() or p.in_reply_to_user_id == me)
            and (since is None or int(p.id) > int(since))
        ]
        posts.sort(key=lambda p: -int(p.id))
        page, next_token = self._page(posts, request)
        data = []
        for p in page:
            item: dict[str, Any] = {
                "id": p.id,
                "text": p.text,
                "author_id": p.author_id,
                "conversation_id": p.conversation_id,
                "created_at": _iso(p.created_at),
                "edit_history_tweet_ids": [p.id],
            }
            if p.parent_id:
                item["referenced_tweets"] = [{"type": "replied_to", "id": p.parent_id}]
                item["in_reply_to_user_id"] = p.in_reply_to_user_id
            data.append(item)
        users = [
            {"id": u["id"], "name": u["name"], "username": u["screen_name"]}
            for u in self._users_map({p.author_id for p in page}).values()
        ]
        meta: dict[str, Any] = {"result_count": len(data)}
        if data:
            meta["newest_id"], meta["oldest_id"] = data[0]["id"], data[-1]["id"]
        if next_token:
            meta["next_token"] = next_token
        body: dict[str, Any] = {"meta": meta}
        if data:
            body.update({"data": data, "includes": {"users": users}})
        return JSONResponse(body, headers=headers)

    async def _token(self, request: Request) -> Response:
        fault = self.take_fault("token")
        if fault is not None:
            return JSONResponse(fault.body or {}, status_code=fault.status, headers=fault.headers)
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "refresh_token" or form.get("client_id") != self.settings.client_id:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "Missing required parameter."}, 400
            )
        if self.refresh_token is None or form.get("refresh_token") != self.refresh_token:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "Value passed for the token was invalid."},
                400,
            )
        access, refresh = self.issue_oauth2()
        self.refresh_count += 1
        return JSONResponse(
            {
                "token_type": "bearer",
                "expires_in": 7200,
                "access_token": access,
                "scope": "tweet.read tweet.write users.read dm.read dm.write offline.access",
                "refresh_token": refresh,
            }
        )

    async def _file(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.files:
            return Response(status_code=404)
        content, content_type = self.files[name]
        return Response(content, media_type=content_type)


@dataclass
class _SignedRequest:
    """The shape oauthlib's signature verification functions read."""

    http_method: str
    uri: str
    params: list[tuple[str, str]]
    signature: str


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[bytes, str]]:
    """The fields of a multipart/form-data body: name -> (content, part content type)."""
    if not content_type.startswith("multipart/form-data"):
        return {}
    message = BytesParser(policy=default_policy).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (payload, part.get_content_type())
    return fields
