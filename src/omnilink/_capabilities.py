"""What a channel can carry, declared as data, and the planner that fits content to it.

``plan(parts, capabilities)`` turns canonical content into the provider messages a channel
will send, and reports every change it had to make (a ``Degradation``), so the helpdesk can
show the agent what the customer will really see.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Literal

import regex
from pydantic import BaseModel, ConfigDict, Field

from ._errors import ContentError
from ._models import (
    ButtonsPart,
    HtmlPart,
    LocationPart,
    MediaPart,
    Part,
    PostbackPart,
    QuickRepliesPart,
    TemplatePart,
    TextPart,
    UnknownPart,
)

_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """Split ``text`` into user-perceived characters (extended grapheme clusters, UAX #29)."""
    return _GRAPHEME.findall(text)


class _Caps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class MediaCapabilities(_Caps):
    """Attachments a channel can carry."""

    max_count: int = 0
    """Attachments in one provider message; 0 means the channel carries none."""
    types: frozenset[str] = frozenset()
    """Top-level kinds accepted: ``image``, ``audio``, ``video``, ``file``."""
    max_bytes: int | None = None
    """Largest file accepted, when the provider says."""
    max_bytes_by_type: dict[str, int] = Field(default_factory=dict)
    """Per-kind limits that are stricter than ``max_bytes``."""
    with_text: bool = True
    """Whether attachments travel in the same provider message as text."""
    captions: bool = True
    """Whether an attachment can carry its own caption; if not, captions move into the text."""


class ChoiceCapabilities(_Caps):
    """Quick replies or buttons a channel can carry."""

    max_count: int = 0
    """0 means the channel has none: they are rendered as numbered text."""
    title_max: int = 20
    text_max: int | None = None
    """Longest prompt the choices can carry (e.g. 640 for a Messenger button template);
    longer text is sent first as plain messages."""


class MessagingWindow(_Caps):
    """A rule that limits when the business may write (e.g. Messenger's 24 hours)."""

    standard: timedelta
    """How long after the customer's last message a normal reply is allowed."""
    extended: timedelta | None = None
    """A longer window open to some senders (e.g. Messenger's HUMAN_AGENT tag, 7 days)."""
    extended_by: str | None = None
    """What opens the extended window, in words."""


class Capabilities(_Caps):
    """Everything the planner and policy checks need to know about a channel."""

    text_max: int | None = None
    """Longest text one provider message may carry, in ``length_unit``; None: no limit."""
    length_unit: Literal["characters", "utf16", "weighted", "bytes"] = "characters"
    """How ``text_max`` is counted (``weighted`` is e.g. X's post counting)."""
    measure: Callable[[str], int] = Field(default=len, exclude=True)
    """Counts a text in ``length_unit``; must be monotonic in the text's prefixes."""
    split_numbering: bool = False
    """Number split texts as ``(1/3)`` (a reply chain on X)."""
    max_messages_per_send: int = 10
    """How many provider messages one reply may be split into before the planner refuses."""
    markup: Literal["none", "html", "markdown"] = "none"
    media: MediaCapabilities = MediaCapabilities()
    quick_replies: ChoiceCapabilities = ChoiceCapabilities()
    buttons: ChoiceCapabilities = ChoiceCapabilities()
    location: bool = False
    templates: bool = False
    typing: bool = False
    read_receipts: bool = False
    delivery_receipts: bool = False
    reply_to: bool = False
    reactions: bool = False
    subjects: bool = False
    """Messages carry a subject line (email)."""
    can_start_conversation: bool = True
    """The business may write first (SMS, email) rather than only answer."""
    thread_by_key: bool = True
    """Inbound messages join the conversation that owns their thread key. False for channels
    whose threads are found through references (email)."""
    window: MessagingWindow | None = None


class Degradation(_Caps):
    """One change the planner made to fit content to a channel."""

    kind: str
    """``html_to_text``, ``split``, ``quick_replies_to_text``, ``buttons_to_text``,
    ``media_to_link``, ``location_to_text``, ``template_to_text``, ``unknown_dropped`` …"""
    detail: str


class PlannedMessage(_Caps):
    """Content for one provider message."""

    parts: tuple[Part, ...]


class Plan(_Caps):
    """What a channel will send for one piece of content, and how it differs."""

    messages: tuple[PlannedMessage, ...]
    degradations: tuple[Degradation, ...] = ()

    @property
    def degraded(self) -> bool:
        return bool(self.degradations)


_TAG = re.compile(r"<[^>]+>")
_BLOCK = re.compile(r"(?i)<\s*(br|/p|/div|/li|/h[1-6]|/tr|p|div|li|tr)\b[^>]*>")
_DROP = re.compile(r"(?is)<(script|style|head)\b.*?</\1\s*>")
_LINK = re.compile(r"""(?is)<a\b[^>]*\bhref\s*=\s*["']([^"']+)["'][^>]*>(.*?)</a\s*>""")


def html_to_text(source: str) -> str:
    """A readable plain-text rendering of HTML: blocks become lines, links keep their URL."""
    text = _DROP.sub("", source)

    def link(match: re.Match[str]) -> str:
        label = _TAG.sub("", match.group(2)).strip()
        url = match.group(1)
        return url if not label or label == url else f"{label} ({url})"

    text = _LINK.sub(link, text)
    text = _BLOCK.sub("\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _numbered(text: str, titles: Sequence[str]) -> str:
    lines = [text] if text else []
    lines.extend(f"{i}. {title}" for i, title in enumerate(titles, 1))
    return "\n".join(lines)


_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", " ")


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split ``text`` into contiguous pieces whose ``measure`` is at most ``limit``.

    ``"".join(pieces) == text`` always holds. Pieces end after a paragraph, line, sentence or
    word break when one lies in the second half of the piece; a grapheme is never split.
    Raises ContentError when a single grapheme does not fit.
    """
    if measure(text) <= limit:
        return [text]
    clusters = graphemes(text)
    offsets = [0]
    for cluster in clusters:
        offsets.append(offsets[-1] + len(cluster))
    pieces: list[str] = []
    start = 0  # index into clusters
    while start < len(clusters):
        # Largest end such that text[offsets[start]:offsets[end]] fits (binary search).
        lo, hi = start, len(clusters)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if measure(text[offsets[start] : offsets[mid]]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        end = lo
        if end == start:
            raise ContentError(f"a single character {clusters[start]!r} is longer than the limit of {limit}")
        if end < len(clusters):
            window = text[offsets[start] : offsets[end]]
            half = len(window) // 2
            for brk in _BREAKS:
                cut = window.rfind(brk)
                if cut >= half:
                    target = offsets[start] + cut + len(brk)
                    # Snap to a grapheme boundary at or before the break's end.
                    while target not in offsets[start + 1 : end + 1]:
                        target -= 1
                        if target <= offsets[start]:
                            break
                    if target > offsets[start]:
                        end = offsets.index(target, start + 1)
                    break
        pieces.append(text[offsets[start] : offsets[end]])
        start = end
    return pieces


def _number_pieces(text: str, limit: int, measure: Callable[[str], int]) -> list[str]:
    """Split with a ``" (i/n)"`` suffix on each piece, counted against the limit."""
    total_guess = 1
    while True:
        suffix_room = len(f" ({total_guess}/{total_guess})")
        pieces = split_text(text, limit - suffix_room, measure)
        if len(pieces) <= total_guess:
            n = len(pieces)
            return [f"{piece} ({i}/{n})" for i, piece in enumerate(pieces, 1)] if n > 1 else pieces
        total_guess = len(pieces)


def strip_numbering(piece: str) -> str:
    """Undo the ``" (i/n)"`` suffix ``plan`` adds to numbered pieces."""
    return re.sub(r" \(\d+/\d+\)\Z", "", piece)


def _fits_choices(titles: Sequence[str], caps: ChoiceCapabilities) -> bool:
    return 0 < len(titles) <= caps.max_count and all(len(t) <= caps.title_max for t in titles)


def plan(parts: Sequence[Part], capabilities: Capabilities) -> Plan:
    """Render canonical ``parts`` into provider messages a channel with ``capabilities`` can send.

    Every change is reported as a Degradation. Raises ContentError for content no rendering
    can carry (an attachment over the provider's size limit, more messages than allowed,
    empty content).
    """
    caps = capabilities
    notes: list[Degradation] = []
    texts: list[str] = []
    media: list[MediaPart] = []
    choices: QuickRepliesPart | ButtonsPart | None = None

    def note(kind: str, detail: str) -> None:
        notes.append(Degradation(kind=kind, detail=detail))

    html_seen = False
    html_chunks: list[str] = []
    for part in parts:
        count_before = len(texts)
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, HtmlPart):
            if caps.markup == "html":
                html_seen = True
                texts.append(part.text if part.text is not None else html_to_text(part.html))
                html_chunks.append(part.html)
                continue
            else:
                texts.append(part.text if part.text is not None else html_to_text(part.html))
                note("html_to_text", "HTML was sent as plain text")
        elif isinstance(part, MediaPart):
            _check_media_size(part, caps)
            if caps.media.max_count and part.media_type in caps.media.types:
                if part.caption and not caps.media.captions:
                    texts.append(part.caption)
                    note("caption_to_text", f"the caption of {part.url} was sent as text")
                    part = part.model_copy(update={"caption": None})
                media.append(part)
            else:
                label = part.filename or part.caption or part.media_type
                texts.append(f"{label}: {part.url}")
                note("media_to_link", f"{part.media_type} {part.url} sent as a link")
        elif isinstance(part, LocationPart):
            where = ", ".join(x for x in (part.name, part.address) if x)
            coords = f"{part.latitude:.6f},{part.longitude:.6f}"
            texts.append(f"{where} (geo:{coords})" if where else f"geo:{coords}")
            note("location_to_text", "location sent as coordinates in text")
        elif isinstance(part, QuickRepliesPart):
            titles = [r.title for r in part.replies]
            if choices is None and _fits_choices(titles, caps.quick_replies):
                choices = part
            else:
                texts.append(_numbered(part.text, titles))
                note("quick_replies_to_text", f"{len(titles)} quick replies sent as numbered text")
        elif isinstance(part, ButtonsPart):
            titles = [b.title for b in part.buttons]
            if choices is None and _fits_choices(titles, caps.buttons):
                choices = part
            else:
                shown = [f"{b.title}: {b.url}" if b.url else b.title for b in part.buttons]
                texts.append(_numbered(part.text, shown))
                note("buttons_to_text", f"{len(titles)} buttons sent as numbered text")
        elif isinstance(part, TemplatePart):
            if caps.templates:
                return Plan(messages=(PlannedMessage(parts=(part,)),), degradations=tuple(notes))
            if part.fallback_text is None:
                raise ContentError(f"template {part.name!r} has no fallback_text for this channel")
            texts.append(part.fallback_text)
            note("template_to_text", f"template {part.name!r} sent as its fallback text")
        elif isinstance(part, PostbackPart):
            texts.append(part.title)
            note("postback_to_text", "a postback was sent as its title")
        elif isinstance(part, UnknownPart):
            note("unknown_dropped", f"an unknown {part.provider_type!r} part was not sent")
        for added in texts[count_before:]:
            html_chunks.append("<p>" + html_lib.escape(added).replace("\n", "<br>\n") + "</p>")

    text = "\n\n".join(t for t in texts if t)
    if not text and not media and choices is None:
        raise ContentError("nothing to send: the content is empty on this channel")

    pieces: list[str] = []
    if text:
        limit = caps.text_max
        if limit is None or caps.measure(text) <= limit:
            pieces = [text]
        elif caps.split_numbering:
            pieces = _number_pieces(text, limit, caps.measure)
        else:
            pieces = split_text(text, limit, caps.measure)
        if len(pieces) > 1:
            note("split", f"text split into {len(pieces)} messages")

    messages: list[list[Part]] = [[TextPart(text=p)] for p in pieces]
    if html_seen and messages:
        # A channel with HTML markup gets one HTML part (text parts escaped into it) that
        # carries the plain-text rendering too, for multipart/alternative.
        messages = [[HtmlPart(html="\n".join(html_chunks), text=text)]]
    if choices is not None:
        # Choices carry their own prompt: attach them to the last text, send them alone, or
        # send the part of their prompt they cannot carry first as plain text.
        choice_caps = caps.quick_replies if isinstance(choices, QuickRepliesPart) else caps.buttons
        limits = [x for x in (caps.text_max, choice_caps.text_max) if x is not None]
        limit = min(limits) if limits else None

        def fits(text: str) -> bool:
            return limit is None or caps.measure(text) <= limit

        last = messages[-1][0] if messages else None
        prompt = ""
        if isinstance(last, TextPart):
            prompt = f"{last.text}\n\n{choices.text}" if choices.text else last.text
        if isinstance(last, TextPart) and fits(prompt):
            messages[-1] = [choices.model_copy(update={"text": prompt})]
        elif fits(choices.text) or limit is None:
            messages.append([choices])
        else:
            head = split_text(choices.text, limit, caps.measure)
            messages.extend([TextPart(text=p)] for p in head[:-1])
            messages.append([choices.model_copy(update={"text": head[-1]})])
            note("split", f"the prompt of the choices was split into {len(head)} messages")
    if media:
        per = max(caps.media.max_count, 1)
        groups = [media[i : i + per] for i in range(0, len(media), per)]
        if caps.media.with_text and messages and isinstance(messages[0][0], TextPart):
            messages[0].extend(groups.pop(0))
        messages[0:0] = [list(g) for g in groups]
    if len(messages) > caps.max_messages_per_send:
        raise ContentError(
            f"content needs {len(messages)} messages; the channel allows {caps.max_messages_per_send}"
        )
    return Plan(
        messages=tuple(PlannedMessage(parts=tuple(m)) for m in messages),
        degradations=tuple(notes),
    )


def _check_media_size(part: MediaPart, caps: Capabilities) -> None:
    if part.size is None:
        return
    limit = caps.media.max_bytes_by_type.get(part.media_type, caps.media.max_bytes)
    if limit is not None and part.size > limit:
        raise ContentError(
            f"{part.media_type} {part.filename or part.url} is {part.size} bytes; "
            f"the channel accepts at most {limit}"
        )
