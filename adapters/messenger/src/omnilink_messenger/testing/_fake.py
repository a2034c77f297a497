"""A fake of Meta's Graph API for Messenger: the Send API with its rules, and signed webhooks.

It enforces what Meta enforces (page tokens, the 24-hour window and the HUMAN_AGENT tag,
2,000-character texts, 13 quick replies, 20-character titles, the button template, 25 MB
attachments and 8 MB images fetched by URL) and answers refusals with Meta's error bodies. Its
simulated customers write through ``user_message`` / ``message_event``, which also records
when each one last wrote. Every accepted send is recorded and echoed back as Meta does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from omnilink import WebhookRequest
from omnilink.testing import FakeProvider, Fault

from .._signature import SIGNATURE_HEADER, sign

GRAPH_HOST = "graph.facebook.com"
DEFAULT_WEBHOOK_URL = "https://hd.example/webhooks/messenger"

_TEXT_MAX = 2000
_QUICK_REPLIES_MAX = 13
_TITLE_MAX = 20
_PAYLOAD_MAX = 1000
_BUTTON_TEXT_MAX = 640
_BUTTONS_MAX = 3
_METADATA_MAX = 1000
_MAX_BYTES = 25 * 1024 * 1024
_IMAGE_URL_MAX_BYTES = 8 * 1024 * 1024
_TAGS = {"HUMAN_AGENT", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"}
_SENDER_ACTIONS = {"typing_on", "typing_off", "mark_seen"}


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def graph_error(
    message: str, code: int, subcode: int | None = None, *, kind: str = "OAuthException", status: int = 400
) -> JSONResponse:
    """A Graph API error response as Meta shapes it."""
    err: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": _trace()}
    if subcode is not None:
        err["error_subcode"] = subcode
    return JSONResponse({"error": err}, status_code=status)


def _trace() -> str:
    return "A" + secrets.token_urlsafe(15)


def rate_limit_fault(times: int = 1, code: int = 613) -> Fault:
    """A Graph API rate-limit refusal (613 by default, or 4 for the app-level limit)."""
    text = (
        "(#613) Calls to this api have exceeded the rate limit."
        if code == 613
        else ("(#4) Application request limit reached")
    )
    return Fault(
        status=400,
        body={"error": {"message": text, "type": "OAuthException", "code": code, "fbtrace_id": _trace()}},
        times=times,
        endpoint="messages",
    )


def server_error_fault(times: int = 1, status: int = 500) -> Fault:
    """A transient Graph API failure (code 2, HTTP 5xx)."""
    return Fault(
        status=status,
        body={
            "error": {
                "message": "An unexpected error has occurred. Please retry your request later.",
                "type": "OAuthException",
                "code": 2,
                "is_transient": True,
                "fbtrace_id": _trace(),
            }
        },
        times=times,
        endpoint="messages",
    )


@dataclass(frozen=True)
class FakePage:
    """A page the fake knows, with its access token and whether it may use HUMAN_AGENT."""

    page_id: str
    access_token: str
    human_agent_enabled: bool = False


@dataclass(frozen=True)
class FakeEvent:
    """One webhook event of a page, as it will sit in ``messaging`` (or ``standby``)."""

    page_id: str
    event: dict[str, Any]
    standby: bool = False

    @property
    def kind(self) -> str:
        for key in ("message", "postback", "reaction", "delivery", "read"):
            if key in self.event:
                return "echo" if key == "message" and self.event[key].get("is_echo") else key
        return "other"

    @property
    def mid(self) -> str | None:
        for key in ("message", "postback"):
            if key in self.event:
                mid = self.event[key].get("mid")
                return str(mid) if mid is not None else None
        return None


@dataclass(frozen=True)
class SentMessage:
    """A send the fake accepted."""

    page_id: str
    recipient: str
    mid: str
    at: datetime
    body: dict[str, Any]

    @property
    def message(self) -> dict[str, Any]:
        msg: dict[str, Any] = self.body["message"]
        return msg

    @property
    def text(self) -> str | None:
        text = self.message.get("text")
        if text is None:
            payload = self.message.get("attachment", {}).get("payload", {})
            text = payload.get("text") if isinstance(payload, dict) else None
        return text if isinstance(text, str) else None

    @property
    def messaging_type(self) -> str:
        return str(self.body.get("messaging_type"))

    @property
    def tag(self) -> str | None:
        tag = self.body.get("tag")
        return str(tag) if tag is not None else None

    @property
    def metadata(self) -> str | None:
        meta = self.message.get("metadata")
        return str(meta) if meta is not None else None


@dataclass
class _User:
    last_wrote: datetime | None = None
    available: bool = True
    other_app_owns_thread: bool = False


@dataclass
class _File:
    size: int
    content_type: str


class FakeGraphAPI(FakeProvider):
    """The Graph API's Messenger Send API and webhooks, in-process or on 127.0.0.1."""

    hosts = (GRAPH_HOST,)

    def __init__(
        self,
        *,
        app_secret: str = "fake-app-secret",
        verify_token: str = "fake-verify-token",
        pages: Sequence[FakePage] = (FakePage("1001", "page-token-1001"),),
        app_id: str = "4200420042",
        echoes: bool = True,
        clock: Callable[[], datetime] | None = None,
        webhook_url: str = DEFAULT_WEBHOOK_URL,
    ) -> None:
        super().__init__(clock=clock)
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.pages = {p.page_id: p for p in pages}
        self.app_id = app_id
        self.echoes = echoes
        self.webhook_url = webhook_url
        self.sent: list[SentMessage] = []
        """Every message the fake accepted, in order."""
        self.sender_actions: list[tuple[str, str, str]] = []
        """Every accepted (page_id, psid, action)."""
        self.refused: list[dict[str, Any]] = []
        """Every refused send: the request body and the error Meta would give."""
        self.pending: list[FakeEvent] = []
        """Webhook events waiting to be delivered (echoes of accepted sends …)."""
        self._users: dict[tuple[str, str], _User] = {}
        self._files: dict[str, _File] = {}
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ configuration

    def channel_config(self, **overrides: Any) -> dict[str, Any]:
        """A ``messenger`` channel config that talks to this fake."""
        config: dict[str, Any] = {
            "app_secret": self.app_secret,
            "verify_token": self.verify_token,
            "app_id": self.app_id,
            "pages": [
                {
                    "page_id": p.page_id,
                    "access_token": p.access_token,
                    "human_agent_enabled": p.human_agent_enabled,
                }
                for p in self.pages.values()
            ],
        }
        config.update(overrides)
        return config

    def add_file(self, url: str, size: int, content_type: str) -> None:
        """Make ``url`` fetchable by the fake (Meta downloads attachments sent by URL)."""
        self._files[url] = _File(size, content_type)

    def set_thread_owner(self, page_id: str, psid: str, *, ours: bool) -> None:
        """Hand the thread to another app (``ours=False``: sends get 10/2018300) or take it back."""
        self._user(page_id, psid).other_app_owns_thread = not ours

    def set_unavailable(self, page_id: str, psid: str, unavailable: bool = True) -> None:
        """Make a customer unreachable (Meta answers 551)."""
        self._user(page_id, psid).available = not unavailable

    def last_wrote(self, page_id: str, psid: str) -> datetime | None:
        """When the customer last wrote to the page, as the fake knows it."""
        user = self._users.get((page_id, psid))
        return user.last_wrote if user else None

    def window_allows(self, page_id: str, psid: str, messaging_type: str, tag: str | None = None) -> bool:
        """Whether the fake would accept a send of this kind now (its window rules only)."""
        return self._window_refusal(page_id, psid, messaging_type, tag) is None

    def _user(self, page_id: str, psid: str) -> _User:
        return self._users.setdefault((page_id, psid), _User())

    def _mid(self) -> str:
        return f"m_{next(self._ids):06d}{secrets.token_hex(8)}"

    # ------------------------------------------------------------------ Send API

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/{version}/me/messages", self._messages, methods=["POST"]),
            Route("/{version}/{page_id}/messages", self._messages, methods=["POST"]),
        ]

    async def _messages(self, request: Request) -> Response:
        fault = self.take_fault("messages")
        if fault is not None:
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        version = request.path_params["version"]
        if not (version.startswith("v") and version[1:].replace(".", "", 1).isdigit()):
            return graph_error(f"Unknown path components: /{version}/messages", 2500)
        token = request.query_params.get("access_token")
        if not token:
            return graph_error(
                "An active access token must be used to query information about the current user.", 2500
            )
        page = next((p for p in self.pages.values() if secrets.compare_digest(p.access_token, token)), None)
        if page is None:
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        path_page = request.path_params.get("page_id")
        if path_page is not None and path_page != page.page_id:
            return graph_error(
                "(#100) The page access token does not belong to this page", 100, kind="GraphMethodException"
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return graph_error("(#100) Invalid JSON", 100)
        if not isinstance(body, dict):
            return graph_error("(#100) Invalid JSON", 100)
        refusal = self._check(page, body)
        if refusal is not None:
            self.refused.append({"body": body, "error": json.loads(bytes(refusal.body))["error"]})
            return refusal
        psid = str(body["recipient"]["id"])
        if "sender_action" in body:
            self.sender_actions.append((page.page_id, psid, body["sender_action"]))
            return JSONResponse({"recipient_id": psid})
        mid = self._mid()
        now = self.now()
        self.sent.append(SentMessage(page.page_id, psid, mid, now, body))
        if self.echoes:
            self.pending.append(self._echo(page.page_id, psid, mid, now, body["message"], self.app_id))
        return JSONResponse({"recipient_id": psid, "message_id": mid})

    def _check(self, page: FakePage, body: dict[str, Any]) -> JSONResponse | None:
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not recipient.get("id"):
            return graph_error("(#100) The parameter recipient is required", 100)
        psid = str(recipient["id"])
        user = self._users.get((page.page_id, psid))
        if user is None or user.last_wrote is None:
            return graph_error("(#100) No matching user found", 100, 2018001)
        if not user.available:
            return graph_error("(#551) This person isn't available right now.", 551, 1545041)
        if user.other_app_owns_thread and "sender_action" not in body:
            return graph_error(
                "(#10) This message is sent outside of allowed window. Another app is controlling this "
                "thread now.",
                10,
                2018300,
            )
        if "sender_action" in body:
            if body["sender_action"] not in _SENDER_ACTIONS or "message" in body:
                return graph_error(
                    "(#100) Param sender_action must be one of typing_on, typing_off, mark_seen "
                    "and be sent alone with recipient",
                    100,
                )
            return None
        message = body.get("message")
        if not isinstance(message, dict):
            return graph_error("(#100) Must send either message or state", 100)
        kind = body.get("messaging_type")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            return graph_error(
                "(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}", 100
            )
        tag = body.get("tag")
        if kind == "MESSAGE_TAG" and tag not in _TAGS:
            return graph_error("(#100) Param tag must be a valid message tag", 100)
        window = self._window_refusal(page.page_id, psid, str(kind), tag if isinstance(tag, str) else None)
        if window is not None:
            return window
        meta = message.get("metadata")
        if meta is not None and (not isinstance(meta, str) or len(meta) > _METADATA_MAX):
            return graph_error("(#100) Param message[metadata] must be at most 1000 characters", 100)
        has_text, has_att = "text" in message, "attachment" in message
        if has_text == has_att:
            return graph_error("(#100) Message must contain exactly one of text or attachment", 100)
        if has_text:
            text = message["text"]
            if not isinstance(text, str) or not text:
                return graph_error("(#100) Param message[text] must be a non-empty UTF-8 encoded string", 100)
            if len(text) > _TEXT_MAX:
                return graph_error(
                    "(#100) Length of param message[text] must be less than or equal to 2000", 100
                )
        else:
            refusal = self._check_attachment(message["attachment"])
            if refusal is not None:
                return refusal
        return self._check_quick_replies(message.get("quick_replies"))

    def _window_refusal(self, page_id: str, psid: str, kind: str, tag: str | None) -> JSONResponse | None:
        user = self._users.get((page_id, psid))
        if user is None or user.last_wrote is None:
            return graph_error("(#100) No matching user found", 100, 2018001)
        age = self.now() - user.last_wrote
        outside = graph_error(
            "(#10) This message is sent outside of allowed window. Learn more about the new policy here: "
            "https://developers.facebook.com/docs/messenger-platform/policy-overview",
            10,
            2018278,
        )
        if kind in ("RESPONSE", "UPDATE"):
            return None if age < timedelta(hours=24) else outside
        if tag == "HUMAN_AGENT":
            page = self.pages.get(page_id)
            if page is None or not page.human_agent_enabled:
                return graph_error(
                    "(#200) The page is not approved to use the HUMAN_AGENT tag",
                    200,
                    kind="OAuthException",
                    status=403,
                )
            return None if age < timedelta(days=7) else outside
        return None

    def _check_attachment(self, att: Any) -> JSONResponse | None:
        if not isinstance(att, dict) or not isinstance(att.get("payload"), dict):
            return graph_error(
                "(#100) Param message[attachment] must be an object with type and payload", 100
            )
        kind, payload = att.get("type"), att["payload"]
        if kind == "template":
            return self._check_template(payload)
        if kind not in ("image", "audio", "video", "file"):
            return graph_error(f"(#100) Invalid attachment type: {kind}", 100)
        if "attachment_id" in payload:
            return None
        url = payload.get("url")
        found = self._files.get(url) if isinstance(url, str) else None
        if found is None:
            return graph_error("(#100) Upload attachment failure.", 100, 2018047)
        top = found.content_type.split("/", 1)[0]
        if kind in ("image", "audio", "video") and top != kind:
            return graph_error(
                f"(#100) Attachment of type {kind} has content type {found.content_type}", 100, 2018047
            )
        limit = _IMAGE_URL_MAX_BYTES if kind == "image" else _MAX_BYTES
        if found.size > limit:
            return graph_error("(#100) Attachment size exceeds allowable limit", 100, 2018109)
        return None

    def _check_template(self, payload: dict[str, Any]) -> JSONResponse | None:
        if payload.get("template_type") != "button":
            return graph_error("(#100) This fake knows only the button template", 100)
        text, buttons = payload.get("text"), payload.get("buttons")
        if not isinstance(text, str) or not text or len(text) > _BUTTON_TEXT_MAX:
            return graph_error(
                "(#100) Param message[attachment][payload][text] must be 1-640 characters", 100
            )
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= _BUTTONS_MAX:
            return graph_error("(#100) param buttons must have 1-3 elements", 100)
        for b in buttons:
            if not isinstance(b, dict) or not isinstance(b.get("title"), str) or not b["title"]:
                return graph_error("(#100) button title is required", 100)
            if len(b["title"]) > _TITLE_MAX:
                return graph_error("(#100) button title must be at most 20 characters", 100)
            if b.get("type") == "postback":
                if not isinstance(b.get("payload"), str) or len(b["payload"]) > _PAYLOAD_MAX:
                    return graph_error("(#100) postback button payload must be at most 1000 characters", 100)
            elif b.get("type") == "web_url":
                if not isinstance(b.get("url"), str) or not b["url"]:
                    return graph_error("(#100) web_url button needs a url", 100)
            else:
                return graph_error(f"(#100) unsupported button type {b.get('type')!r}", 100)
        return None

    def _check_quick_replies(self, replies: Any) -> JSONResponse | None:
        if replies is None:
            return None
        if not isinstance(replies, list) or not 1 <= len(replies) <= _QUICK_REPLIES_MAX:
            return graph_error("(#100) param message[quick_replies] must have 1-13 elements", 100)
        for r in replies:
            if not isinstance(r, dict):
                return graph_error("(#100) quick reply must be an object", 100)
            if r.get("content_type") in ("user_phone_number", "user_email"):
                continue
            if r.get("content_type") != "text":
                return graph_error(
                    "(#100) quick reply content_type must be text, user_phone_number or user_email", 100
                )
            title, payload = r.get("title"), r.get("payload")
            if not isinstance(title, str) or not title or len(title) > _TITLE_MAX:
                return graph_error("(#100) quick reply title must be 1-20 characters", 100)
            if not isinstance(payload, str | int) or len(str(payload)) > _PAYLOAD_MAX:
                return graph_error("(#100) quick reply payload must be at most 1000 characters", 100)
        return None

    # ------------------------------------------------------------------ webhook events

    def _event(
        self, page_id: str, sender: str, recipient: str, at: datetime | None, **body: Any
    ) -> dict[str, Any]:
        when = at or self.now()
        return {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": _ms(when), **body}

    def message_event(
        self,
        page_id: str,
        psid: str,
        text: str | None = None,
        *,
        attachments: Sequence[dict[str, Any]] = (),
        quick_reply_payload: str | None = None,
        reply_to: str | None = None,
        at: datetime | None = None,
        mid: str | None = None,
        standby: bool = False,
    ) -> FakeEvent:
        """A customer's message to a page; records when the customer last wrote."""
        when = at or self.now()
        user = self._user(page_id, psid)
        if user.last_wrote is None or when > user.last_wrote:
            user.last_wrote = when
            # Messages arrive under standby exactly while another app owns the thread.
            user.other_app_owns_thread = standby
        message: dict[str, Any] = {"mid": mid or self._mid()}
        if text is not None:
            message["text"] = text
        if quick_reply_payload is not None:
            message["quick_reply"] = {"payload": quick_reply_payload}
        if reply_to is not None:
            message["reply_to"] = {"mid": reply_to}
        if attachments:
            message["attachments"] = [dict(a) for a in attachments]
        return FakeEvent(page_id, self._event(page_id, psid, page_id, when, message=message), standby)

    def user_message(self, page_id: str, psid: str, text: str | None = None, **kwargs: Any) -> WebhookRequest:
        """A customer writes to a page: the signed webhook request Meta would send."""
        return self.webhook_request([self.message_event(page_id, psid, text, **kwargs)])

    def postback_event(
        self, page_id: str, psid: str, title: str, payload: str, *, at: datetime | None = None
    ) -> FakeEvent:
        """A customer tapped a postback button (this also opens the window, as a message does)."""
        when = at or self.now()
        user = self._user(page_id, psid)
        if user.last_wrote is None or when > user.last_wrote:
            user.last_wrote = when
        body = {"title": title, "payload": payload, "mid": self._mid()}
        return FakeEvent(page_id, self._event(page_id, psid, page_id, when, postback=body))

    def reaction_event(
        self,
        page_id: str,
        psid: str,
        mid: str,
        emoji: str = "\u2764\ufe0f",
        *,
        action: str = "react",
        at: datetime | None = None,
    ) -> FakeEvent:
        body: dict[str, Any] = {"reaction": "love", "emoji": emoji, "action": action, "mid": mid}
        if action == "unreact":
            body = {"action": "unreact", "mid": mid}
        return FakeEvent(page_id, self._event(page_id, psid, page_id, at, reaction=body))

    def delivery_event(
        self,
        page_id: str,
        psid: str,
        *,
        mids: Sequence[str] | None = None,
        watermark: datetime | None = None,
        at: datetime | None = None,
    ) -> FakeEvent:
        """Messages delivered: by ``mids`` when given, and everything before ``watermark`` (default now)."""
        when = at or self.now()
        body: dict[str, Any] = {"watermark": _ms(watermark or when)}
        if mids is not None:
            body["mids"] = list(mids)
        return FakeEvent(page_id, self._event(page_id, psid, page_id, when, delivery=body))

    def read_event(
        self, page_id: str, psid: str, *, watermark: datetime | None = None, at: datetime | None = None
    ) -> FakeEvent:
        when = at or self.now()
        return FakeEvent(
            page_id, self._event(page_id, psid, page_id, when, read={"watermark": _ms(watermark or when)})
        )

    def inbox_echo_event(
        self,
        page_id: str,
        psid: str,
        text: str,
        *,
        app_id: str = "263902037430900",
        at: datetime | None = None,
    ) -> FakeEvent:
        """An echo of a message the page sent from another tool (the page inbox): no metadata."""
        return self._echo(page_id, psid, self._mid(), at or self.now(), {"text": text}, app_id)

    def _echo(
        self, page_id: str, psid: str, mid: str, at: datetime, message: dict[str, Any], app_id: str
    ) -> FakeEvent:
        echo: dict[str, Any] = {"is_echo": True, "app_id": int(app_id), "mid": mid}
        if "metadata" in message:
            echo["metadata"] = message["metadata"]
        if "text" in message:
            echo["text"] = message["text"]
        if "attachment" in message:
            att = message["attachment"]
            echo["attachments"] = [{"type": att["type"], "payload": att.get("payload", {})}]
        if "quick_replies" in message:
            echo["quick_replies"] = message["quick_replies"]
        return FakeEvent(page_id, self._event(page_id, page_id, psid, at, message=echo))

    def take_pending(self) -> list[FakeEvent]:
        """Events the fake produced on its own (echoes of accepted sends), oldest first; clears them."""
        events, self.pending = self.pending, []
        return events

    def deliver_all(self, page_id: str, psid: str, *, with_mids: bool = True) -> FakeEvent:
        """A delivery receipt for everything sent to ``psid`` so far (watermark now)."""
        mids = [s.mid for s in self.sent if s.page_id == page_id and s.recipient == psid]
        return self.delivery_event(page_id, psid, mids=mids if with_mids else None)

    # ------------------------------------------------------------------ webhook requests

    def payload(self, events: Iterable[FakeEvent], *, entry_size: int | None = None) -> dict[str, Any]:
        """The webhook body for ``events``: one entry per page run, ``entry_size`` events at most."""
        entries: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        for ev in events:
            key = "standby" if ev.standby else "messaging"
            fits = (
                current is not None
                and current["id"] == ev.page_id
                and key in current
                and (entry_size is None or len(current[key]) < entry_size)
            )
            if not fits:
                current = {"id": ev.page_id, "time": _ms(self.now()), key: []}
                entries.append(current)
            assert current is not None
            current[key].append(ev.event)
        return {"object": "page", "entry": entries}

    def signed_request(self, payload: dict[str, Any], *, url: str | None = None) -> WebhookRequest:
        """POST ``payload`` as Meta does: ASCII-escaped compact JSON, ``X-Hub-Signature-256``."""
        body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(self.app_secret, body),
            "x-hub-signature": "sha1=" + _sha1(self.app_secret, body),
        }
        return WebhookRequest.build("POST", url or self.webhook_url, headers, body)

    def webhook_request(
        self, events: Iterable[FakeEvent], *, entry_size: int | None = None, url: str | None = None
    ) -> WebhookRequest:
        """A signed webhook request carrying ``events`` in order."""
        return self.signed_request(self.payload(events, entry_size=entry_size), url=url)

    def batch_request(
        self,
        events: Sequence[FakeEvent],
        *,
        seed: int = 0,
        entry_size: int | None = None,
        duplicates: float = 0.0,
        url: str | None = None,
    ) -> WebhookRequest:
        """A batch as Meta may send it: shuffled, some events repeated (``duplicates`` share)."""
        rng = random.Random(seed)
        batch = list(events)
        batch.extend(ev for ev in list(batch) if rng.random() < duplicates)
        rng.shuffle(batch)
        return self.webhook_request(batch, entry_size=entry_size, url=url)

    def verification_request(
        self, *, token: str | None = None, challenge: str = "1158201444", mode: str = "subscribe"
    ) -> WebhookRequest:
        """The GET handshake Meta sends when the webhook is set up."""
        query = urlencode(
            {"hub.mode": mode, "hub.verify_token": token or self.verify_token, "hub.challenge": challenge}
        )
        return WebhookRequest.build("GET", f"{self.webhook_url}?{query}", {})


def _sha1(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
