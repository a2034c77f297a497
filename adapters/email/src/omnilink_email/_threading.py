"""Offline threading of a mailbox: Jamie Zawinski's algorithm (RFC 5256 "REFERENCES").

Messages are first put in a canonical order (date, Message-ID, bytes) so the result does not
depend on the order they were given in.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._mime import decode_words, message_ids, parse_date, synthetic_message_id
from ._subject import base_subject

__all__ = ["thread_messages"]


@dataclass(eq=False)
class _Container:
    id: str
    message: _Summary | None = None
    parent: _Container | None = None
    children: list[_Container] = field(default_factory=list)


@dataclass(frozen=True)
class _Summary:
    id: str
    refs: tuple[str, ...]
    subject_key: str
    timestamp: float
    digest: str


_WANTED = {"message-id", "references", "in-reply-to", "subject", "date"}
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(r"\r?\n[ \t]+")


def _headers(raw: bytes) -> dict[str, str]:
    """The few headers threading needs, read straight from the header block (fast, never raises)."""
    end = _HEAD_END.search(raw)
    block = (raw[: end.start()] if end else raw).decode("utf-8", "surrogateescape")
    found: dict[str, str] = {}
    for line in _FOLD.sub(" ", block).splitlines():
        name, sep, value = line.partition(":")
        key = name.strip().lower()
        if sep and key in _WANTED and key not in found:
            found[key] = value.strip()
    return found


def _summarise(raw: bytes) -> _Summary:
    headers = _headers(raw)
    ids = message_ids(headers.get("message-id"))
    refs = message_ids(headers.get("references"))
    in_reply_to = message_ids(headers.get("in-reply-to"))
    subject = headers.get("subject") or ""
    if "=?" in subject or not subject.isascii():
        subject = decode_words(subject.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    date = parse_date(headers.get("date"))
    if in_reply_to and in_reply_to[0] not in refs:
        refs.append(in_reply_to[0])
    own = ids[0] if ids else synthetic_message_id(raw)
    base = base_subject(subject)
    return _Summary(
        id=own,
        refs=tuple(r for r in refs if r != own),
        subject_key=base.casefold(),
        timestamp=date.timestamp() if date else math.inf,
        digest=hashlib.sha256(raw).hexdigest(),
    )


def _is_ancestor(candidate: _Container, node: _Container) -> bool:
    """Whether ``candidate`` is ``node`` or one of its ancestors."""
    current: _Container | None = node
    while current is not None:
        if current is candidate:
            return True
        current = current.parent
    return False


def _link(parent: _Container, child: _Container) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def _members(root: _Container) -> list[_Summary]:
    out: list[_Summary] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.message is not None:
            out.append(node.message)
        stack.extend(node.children)
    return out


def thread_messages(raws: Sequence[bytes]) -> list[list[str]]:
    """Group messages into threads; return each thread's Message-IDs (without ``<>``).

    Parent links come from References (then In-Reply-To); links that would make a loop are
    ignored; threads whose roots share a base subject (``base_subject``, case-folded, not
    empty) are merged. Each thread is in date order (undated messages last, ties by id),
    threads are ordered by their first message. A message without a Message-ID gets the
    stable hash-based id ``parse_message`` gives it; a repeated Message-ID counts once.
    """
    summaries = sorted((_summarise(bytes(raw)) for raw in raws), key=lambda s: (s.timestamp, s.id, s.digest))
    table: dict[str, _Container] = {}

    def container(message_id: str) -> _Container:
        found = table.get(message_id)
        if found is None:
            found = table[message_id] = _Container(message_id)
        return found

    for summary in summaries:
        this = container(summary.id)
        if this.message is not None:
            continue  # the same message seen twice
        this.message = summary
        previous: _Container | None = None
        for ref in summary.refs:
            current = container(ref)
            if (
                previous is not None
                and current.parent is None
                and current is not this
                and not _is_ancestor(current, previous)
            ):
                _link(previous, current)
            previous = current
        if this.parent is not None:
            this.parent.children.remove(this)
            this.parent = None
        if previous is not None and not _is_ancestor(this, previous):
            _link(previous, this)

    roots = [c for c in table.values() if c.parent is None]
    # Group the trees by subject (JWZ step 5), in a canonical order of roots.
    trees: list[tuple[tuple[float, str], list[_Summary], str]] = []
    for root in roots:
        members = _members(root)
        if not members:
            continue  # only referenced ids, never seen
        first = min(members, key=lambda s: (s.timestamp, s.id))
        # An empty root (a message referenced but not present) takes its first message's subject.
        root_message = root.message or first
        trees.append(((first.timestamp, first.id), members, root_message.subject_key))
    trees.sort(key=lambda t: t[0])
    by_subject: dict[str, list[_Summary]] = {}
    groups: list[list[_Summary]] = []
    for _first, members, key in trees:
        if key and key in by_subject:
            by_subject[key].extend(members)
            continue
        groups.append(members)
        if key:
            by_subject[key] = members
    ordered = [sorted(group, key=lambda s: (s.timestamp, s.id)) for group in groups]
    ordered.sort(key=lambda group: (group[0].timestamp, group[0].id))
    return [[s.id for s in group] for group in ordered]
