"""Subject lines reduced for comparison: reply/forward prefixes and list tags stripped."""

from __future__ import annotations

import re

# Reply and forward prefixes in the languages mail clients write them in. Longer spellings
# come first so that ``Fwd`` wins over ``Fw``; matching is case-insensitive.
REPLY_PREFIXES: tuple[str, ...] = (
    "Re",
    "AW",
    "SV",
    "Antw",
    "R",
    "RIF",
    "RES",
    "Odp",
    "YNT",
    "ΑΠ",
    "ΣΧΕΤ",
    "תגובה",
    "Vá",
    "BLS",
    "НА",
    "Отв",
    "回复",
    "答复",
    "回覆",
    "返信",
)
"""Prefixes meaning "reply" (English, German, Nordic, Dutch, Italian, Portuguese, Polish,
Turkish, Greek, Hebrew, Hungarian, Indonesian, Bulgarian, Russian, Chinese, Japanese)."""

FORWARD_PREFIXES: tuple[str, ...] = (
    "Fwd",
    "Fw",
    "WG",
    "VS",
    "VB",
    "VL",
    "Doorst",
    "I",
    "RV",
    "ENC",
    "TR",
    "PD",
    "İLT",
    "ILT",
    "İLT".lower(),  # "i̇lt": Python lower-cases İ to i + combining dot
    "ΠΡΘ",
    "הועבר",
    "TRS",
    "Пересл",
    "转发",
    "轉寄",
    "転送",
)
"""Prefixes meaning "forwarded"."""


def _alternation(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_COUNTER = r"(?:\s*(?:\[\d+\]|\(\d+\)))?"
_PREFIX = re.compile(
    rf"^(?:{_alternation(REPLY_PREFIXES + FORWARD_PREFIXES)}){_COUNTER}\s*[:：]\s*", re.IGNORECASE
)
_REPLY_PREFIX = re.compile(rf"^(?:{_alternation(REPLY_PREFIXES)}){_COUNTER}\s*[:：]\s*", re.IGNORECASE)
_LIST_TAG = re.compile(r"^\[[^\[\]]*\]\s*")
_FWD_TRAILER = re.compile(r"\s*\((?:fwd|fw)\)\s*$", re.IGNORECASE)
_FWD_WRAPPED = re.compile(r"^\[(?:fwd|fw)\s*:\s*(.*)\]$", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def base_subject(subject: str | None) -> str:
    """The subject without reply/forward prefixes, counters, list tags and ``(fwd)`` trailers.

    Stripping repeats until nothing changes, so ``"[list] Re: AW[2]: Fwd： Hi"`` gives
    ``"Hi"``. Whitespace runs collapse to one space. A list tag is kept when removing it would
    leave nothing (``"[URGENT]"`` stays). Case is kept; compare with ``.casefold()``.
    """
    if not subject:
        return ""
    text = _SPACE.sub(" ", subject).strip()
    while True:
        before = text
        text = _FWD_TRAILER.sub("", text)
        wrapped = _FWD_WRAPPED.match(text)
        if wrapped:
            text = wrapped.group(1).strip()
        text = _PREFIX.sub("", text)
        tag = _LIST_TAG.match(text)
        if tag and text[tag.end() :].strip():
            text = text[tag.end() :]
        text = text.strip()
        if text == before:
            return text


def subject_key(subject: str | None) -> str | None:
    """``base_subject(subject).casefold()``, or None when nothing is left to compare."""
    key = base_subject(subject).casefold()
    return key or None


def reply_subject(subject: str | None) -> str:
    """The subject of a reply: exactly one ``Re:`` in front, never ``Re: Re:``."""
    text = _SPACE.sub(" ", subject or "").strip()
    while True:
        stripped = _REPLY_PREFIX.sub("", text).strip()
        if stripped == text:
            break
        text = stripped
    return f"Re: {text}" if text else "Re:"
