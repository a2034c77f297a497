"""X's wire formats turned into omnilink's inbound items, the same way from both paths.

Account Activity webhooks deliver v1.1-style objects (``direct_message_events``,
``tweet_create_events`` …); polling reads API v2 objects (``GET /2/dm_events``, mentions).
For the same traffic both paths must produce equal ``InboundMessage`` items (apart from
``raw``, which keeps each path's own payload), because the Hub dedupes on the provider id and
stores whichever arrives first.

Thread keys (one X channel carries two surfaces):

- ``dm:<dm_conversation_id>`` for a one-to-one DM conversation: ``<smaller id>-<larger id>``
  of the two user ids, compared as integers;
- ``post:<root post id>`` for public posts: the root of the reply tree (v2
  ``conversation_id``). Classic webhook tweets do not carry it, so the root is looked up from
  the posts we saw or sent (``PostIndex``), falling back to the parent post's id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from omnilink import (
    DeliveryStatus,
    Inbound,
    InboundDeletion,
    InboundDelivery,
    InboundMessage,
    InboundTyping,
    MediaPart,
    Part,
    TextPart,
)

TWITTER_EPOCH_MS = 1288834974657
"""Snowflake ids carry milliseconds since this instant in their top bits."""

DM_PREFIX = "dm:"
POST_PREFIX = "post:"

JSON = dict[str, Any]


def dm_conversation_id(user_a: str, user_b: str) -> str:
    """The id X gives the one-to-one conversation of two users: smaller id, dash, larger id."""
    low, high = sorted((user_a, user_b), key=int)
    return f"{low}-{high}"


def dm_thread_key(account: str, user_id: str) -> str:
    """The thread key of the DM conversation between our ``account`` and ``user_id``."""
    return DM_PREFIX + dm_conversation_id(account, user_id)


def post_thread_key(root_id: str) -> str:
    return POST_PREFIX + root_id


def snowflake_time(snowflake: str) -> datetime | None:
    """When a snowflake id (post, DM event) was made; None for ids that are not snowflakes."""
    try:
        value = int(snowflake)
    except ValueError:
        return None
    if value < (1 << 22):
        return None
    return datetime.fromtimestamp(((value >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)


def make_snowflake(at: datetime, sequence: int = 0) -> str:
    """A snowflake id for the instant ``at`` (used by the fake)."""
    ms = int(at.timestamp() * 1000) - TWITTER_EPOCH_MS
    return str((ms << 22) | (sequence & 0x3FFFFF))


def _from_ms(value: str | int) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _from_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


# --------------------------------------------------------------------------- media


def _video_url(variants: Iterable[JSON]) -> str | None:
    mp4 = [v for v in variants if v.get("content_type") == "video/mp4" and v.get("url")]
    if not mp4:
        return None
    return str(max(mp4, key=lambda v: int(v.get("bit_rate", 0)))["url"])


def _media_part(kind: str, photo_url: str | None, variants: Iterable[JSON]) -> MediaPart | None:
    if kind == "photo" and photo_url:
        return MediaPart(url=photo_url, content_type="image/jpeg")
    if kind in ("video", "animated_gif"):
        url = _video_url(variants)
        if url:
            return MediaPart(url=url, content_type="video/mp4")
    return None


def _classic_media(media: JSON) -> MediaPart | None:
    variants = media.get("video_info", {}).get("variants", [])
    return _media_part(str(media.get("type", "")), media.get("media_url_https"), variants)


def _v2_media(media: JSON) -> MediaPart | None:
    return _media_part(str(media.get("type", "")), media.get("url"), media.get("variants", []))


def _parts(text: str, media: Iterable[MediaPart | None]) -> tuple[Part, ...]:
    parts: list[Part] = [TextPart(text=text)] if text else []
    parts.extend(m for m in media if m is not None)
    return tuple(parts)


# --------------------------------------------------------------------------- post index


@dataclass(frozen=True)
class PostFacts:
    """What we know about one post: the root of its reply tree and the customer it concerns."""

    root: str
    customer: str | None

    def encode(self) -> str:
        return f"{self.root} {self.customer or ''}".rstrip()

    @classmethod
    def decode(cls, value: str) -> PostFacts:
        root, _, customer = value.partition(" ")
        return cls(root, customer or None)


@dataclass
class PostIndex:
    """Posts we know, by id, for threading classic webhook tweets (filled from the channel's state)."""

    known: dict[str, PostFacts] = field(default_factory=dict)
    learned: dict[str, PostFacts] = field(default_factory=dict)
    """Facts found while parsing, for the channel to save."""

    def lookup(self, post_id: str) -> PostFacts | None:
        return self.learned.get(post_id) or self.known.get(post_id)

    def learn(self, post_id: str, facts: PostFacts) -> None:
        if self.lookup(post_id) != facts:
            self.learned[post_id] = facts


# --------------------------------------------------------------------------- messages


def _dm_message(
    *,
    account: str,
    event_id: str,
    sender_id: str,
    other_id: str,
    conversation_id: str,
    text: str,
    media: Iterable[MediaPart | None],
    sent_at: datetime,
    sender_name: str | None,
    raw: JSON,
) -> InboundMessage:
    echo = sender_id == account
    return InboundMessage(
        account=account,
        thread_key=DM_PREFIX + conversation_id,
        sender=other_id if echo else sender_id,
        sender_name=None if echo else sender_name,
        provider_message_id=event_id,
        parts=_parts(text, media),
        sent_at=sent_at,
        echo=echo,
        raw=raw,
    )


def _post_message(
    *,
    account: str,
    post_id: str,
    author_id: str,
    parent_id: str | None,
    parent_author: str | None,
    root: str,
    text: str,
    media: Iterable[MediaPart | None],
    sent_at: datetime,
    author_name: str | None,
    index: PostIndex,
    raw: JSON,
) -> InboundMessage | None:
    echo = author_id == account
    customer: str | None = author_id
    if echo:
        customer = parent_author if parent_author and parent_author != account else None
        if customer is None and parent_id is not None:
            facts = index.lookup(parent_id)
            customer = facts.customer if facts else None
        if customer is None:
            return None  # our own post that answers nobody: not part of a customer thread
    index.learn(post_id, PostFacts(root, customer))
    return InboundMessage(
        account=account,
        thread_key=post_thread_key(root),
        sender=customer,
        sender_name=None if echo else author_name,
        provider_message_id=post_id,
        parts=_parts(text, media),
        sent_at=sent_at,
        references=(parent_id,) if parent_id else (),
        reply_to_provider_id=parent_id,
        echo=echo,
        raw=raw,
    )


# --------------------------------------------------------------------------- webhooks


def classic_parent_ids(payload: JSON) -> set[str]:
    """Parent post ids of the payload's tweets, to look up in the post index before parsing."""
    return {
        str(t["in_reply_to_status_id_str"])
        for t in payload.get("tweet_create_events", [])
        if isinstance(t, dict) and t.get("in_reply_to_status_id_str")
    }


def parse_activity(payload: JSON, account: str, index: PostIndex) -> list[Inbound]:
    """Every item of one Account Activity delivery, in the payload's order."""
    users: Mapping[str, JSON] = payload.get("users") or {}
    items: list[Inbound] = []
    for event in payload.get("direct_message_events", []):
        if event.get("type") != "message_create":
            continue
        create = event["message_create"]
        sender = str(create["sender_id"])
        recipient = str(create["target"]["recipient_id"])
        other = recipient if sender == account else sender
        data = create.get("message_data", {})
        attachment = data.get("attachment") or {}
        media = [_classic_media(attachment["media"])] if attachment.get("type") == "media" else []
        items.append(
            _dm_message(
                account=account,
                event_id=str(event["id"]),
                sender_id=sender,
                other_id=other,
                conversation_id=dm_conversation_id(sender, recipient),
                text=str(data.get("text", "")),
                media=media,
                sent_at=_from_ms(event["created_timestamp"]),
                sender_name=(users.get(sender) or {}).get("name"),
                raw=event,
            )
        )
    for tweet in payload.get("tweet_create_events", []):
        message = _classic_tweet(tweet, account, index)
        if message is not None:
            items.append(message)
    for typing in payload.get("direct_message_indicate_typing_events", []):
        sender = str(typing["sender_id"])
        if sender == account:
            continue
        items.append(InboundTyping(account=account, thread_key=dm_thread_key(account, sender), on=True))
    for read in payload.get("direct_message_mark_read_events", []):
        reader = str(read["sender_id"])
        if reader == account:
            continue  # our own read marks say nothing about delivery
        last = str(read["last_read_event_id"])
        items.append(
            InboundDelivery(
                account=account,
                status=DeliveryStatus.READ,
                provider_message_id=last,
                thread_key=dm_thread_key(account, reader),
                watermark=snowflake_time(last),
                at=_from_ms(read["created_timestamp"]),
                raw=read,
            )
        )
    for deleted in payload.get("tweet_delete_events", []):
        # X's compliance notice: the post is gone; the Hub removes what it stored of it.
        items.append(
            InboundDeletion(
                account=account,
                provider_message_id=str(deleted["status"]["id"]),
                at=_from_ms(deleted["timestamp_ms"]),
            )
        )
    return items


def _classic_tweet(tweet: JSON, account: str, index: PostIndex) -> InboundMessage | None:
    if "retweeted_status" in tweet:
        return None  # a retweet says nothing new
    post_id = str(tweet["id_str"])
    user = tweet.get("user") or {}
    author = str(user.get("id_str", ""))
    parent = tweet.get("in_reply_to_status_id_str")
    parent_id = str(parent) if parent else None
    if parent_id is None:
        root = post_id
    else:
        facts = index.lookup(parent_id)
        root = facts.root if facts else parent_id
    extended = tweet.get("extended_tweet") or {}
    text = str(extended.get("full_text") or tweet.get("full_text") or tweet.get("text", ""))
    entities = extended.get("extended_entities") or tweet.get("extended_entities") or {}
    media = [_classic_media(m) for m in entities.get("media", [])]
    if "timestamp_ms" in tweet:
        sent_at = _from_ms(tweet["timestamp_ms"])
    else:
        sent_at = parsedate_to_datetime(str(tweet["created_at"])).astimezone(UTC)
    reply_user = tweet.get("in_reply_to_user_id_str")
    return _post_message(
        account=account,
        post_id=post_id,
        author_id=author,
        parent_id=parent_id,
        parent_author=str(reply_user) if reply_user else None,
        root=root,
        text=text,
        media=media,
        sent_at=sent_at,
        author_name=user.get("name"),
        index=index,
        raw=tweet,
    )


# --------------------------------------------------------------------------- API v2


def _includes_by(includes: JSON, kind: str, key: str) -> dict[str, JSON]:
    return {str(item[key]): item for item in includes.get(kind, []) if key in item}


def v2_dm_events(body: JSON, account: str) -> list[InboundMessage]:
    """The messages of one ``GET /2/dm_events`` page, in the page's order (newest first)."""
    includes = body.get("includes") or {}
    users = _includes_by(includes, "users", "id")
    media = _includes_by(includes, "media", "media_key")
    out: list[InboundMessage] = []
    for event in body.get("data") or []:
        if event.get("event_type") != "MessageCreate":
            continue
        sender = str(event["sender_id"])
        conversation = str(event["dm_conversation_id"])
        participants = conversation.split("-")
        if len(participants) != 2:
            continue  # group conversations are not supported
        other = participants[0] if participants[1] == sender else participants[1]
        keys = (event.get("attachments") or {}).get("media_keys", [])
        out.append(
            _dm_message(
                account=account,
                event_id=str(event["id"]),
                sender_id=sender,
                other_id=other,
                conversation_id=conversation,
                text=str(event.get("text", "")),
                media=[_v2_media(media[k]) for k in keys if k in media],
                sent_at=_from_iso(str(event["created_at"])),
                sender_name=(users.get(sender) or {}).get("name"),
                raw=event,
            )
        )
    return out


def v2_posts(body: JSON, account: str, index: PostIndex) -> list[InboundMessage]:
    """The messages of one mentions page (``GET /2/users/{id}/mentions``), in the page's order."""
    includes = body.get("includes") or {}
    users = _includes_by(includes, "users", "id")
    media = _includes_by(includes, "media", "media_key")
    out: list[InboundMessage] = []
    for post in body.get("data") or []:
        refs = post.get("referenced_tweets") or []
        if any(r.get("type") == "retweeted" for r in refs):
            continue
        parent_id = next((str(r["id"]) for r in refs if r.get("type") == "replied_to"), None)
        post_id = str(post["id"])
        author = str(post["author_id"])
        root = str(post.get("conversation_id") or parent_id or post_id)
        keys = (post.get("attachments") or {}).get("media_keys", [])
        reply_user = post.get("in_reply_to_user_id")
        message = _post_message(
            account=account,
            post_id=post_id,
            author_id=author,
            parent_id=parent_id,
            parent_author=str(reply_user) if reply_user else None,
            root=root,
            text=str(post.get("text", "")),
            media=[_v2_media(media[k]) for k in keys if k in media],
            sent_at=_from_iso(str(post["created_at"])),
            author_name=(users.get(author) or {}).get("name"),
            index=index,
            raw=post,
        )
        if message is not None:
            out.append(message)
    return out


DM_EVENT_FIELDS = "id,event_type,text,sender_id,dm_conversation_id,created_at,attachments"
POST_FIELDS = "id,text,author_id,conversation_id,created_at,in_reply_to_user_id,referenced_tweets,attachments"
MEDIA_FIELDS = "media_key,type,url,variants"
