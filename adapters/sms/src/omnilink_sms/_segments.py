"""How an SMS text is encoded (GSM-7 or UCS-2) and split into the segments a phone receives.

The rules are GSM 03.38's: characters of the basic table take one septet, characters of the
extension table two (an escape and the character); any other character makes the whole text
UCS-2, counted in UTF-16 code units. A single SMS carries 160 septets or 70 units; a
concatenated one 153 septets or 67 units per segment, because the user data header takes six
octets. A segment never ends inside an escape pair, a surrogate pair or a grapheme cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from omnilink import graphemes

__all__ = ["GSM7_BASIC", "GSM7_EXTENSION", "SMART_ENCODING", "SmsSegments", "is_gsm7", "segments"]

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC: frozenset[str] = frozenset(
    "\n\r !\"#$%&'()*+,-./0123456789:;<=>?@"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    "_¡£¤¥§¿ÄÅÆÇÉÑÖØÜßàäåæèéìñòöøùü"
    "ΓΔΘΛΞΠΣΦΨΩ"
)
"""The GSM 03.38 basic alphabet: one septet each (127 characters; the 128th code is the escape)."""

GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")
"""The GSM 03.38 extension table: two septets each (escape + character)."""

SMART_ENCODING: Mapping[str, str] = {
    # quotes and primes
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u201a": "'",  # ‚
    "\u201b": "'",  # ‛
    "\u2032": "'",  # ′
    "\u00b4": "'",  # ´
    "\u02bc": "'",  # ʼ
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u201f": '"',  # ‟
    "\u2033": '"',  # ″
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    "\u2039": "<",  # ‹
    "\u203a": ">",  # ›
    # dashes and hyphens
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    # spaces
    "\u00a0": " ",  # no-break space
    "\u2000": " ",
    "\u2001": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2004": " ",
    "\u2005": " ",
    "\u2006": " ",
    "\u2007": " ",
    "\u2008": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",
    "\u3000": " ",  # ideographic space
    # invisible characters
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # zero-width no-break space
    "\u00ad": "",  # soft hyphen
    # punctuation
    "\u2026": "...",  # …
    "\u2022": "-",  # •
    "\u02c6": "^",  # ˆ
    "\u02dc": "~",  # ˜
    "\u2044": "/",  # fraction slash
    "\u2215": "/",  # division slash
}
"""Look-alikes that smart encoding maps to GSM-7 characters (opt-in, always reported)."""

_SINGLE = {"GSM-7": 160, "UCS-2": 70}
_CONCAT = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SmsSegments:
    """How a text travels as SMS: its encoding, and the segments the phone reassembles."""

    encoding: Encoding
    """``GSM-7`` when every character is in GSM 03.38 (basic or extension), else ``UCS-2``."""
    count: int
    """How many SMS segments the text takes (an empty text still takes one)."""
    parts: tuple[str, ...]
    """The text of each segment; ``"".join(parts) == text``."""
    text: str
    """The text that is sent: the input, or its smart-encoded form."""
    units: int
    """The whole text's length in septets (GSM-7) or UTF-16 code units (UCS-2)."""
    replacements: Mapping[str, str] = field(default_factory=dict)
    """What smart encoding replaced: original character → GSM-7 text (empty when nothing)."""

    @property
    def per_segment(self) -> int:
        """Septets or units available in each segment of this text."""
        return (_SINGLE if self.count == 1 else _CONCAT)[self.encoding]


_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION
_EXTENSION = tuple(GSM7_EXTENSION)


def _measure(text: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return len(text) + sum(text.count(c) for c in _EXTENSION)
    return len(text.encode("utf-16-le")) // 2


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 basic or extension table."""
    return _GSM7_ALL.issuperset(text)


def _smart(text: str) -> tuple[str, dict[str, str]]:
    used: dict[str, str] = {}
    out: list[str] = []
    for char in text:
        mapped = SMART_ENCODING.get(char)
        if mapped is not None and not (char in GSM7_BASIC or char in GSM7_EXTENSION):
            used[char] = mapped
            out.append(mapped)
        else:
            out.append(char)
    return "".join(out), used


def _gsm_units(text: str) -> list[str]:
    """GSM-7 text in unbreakable pieces: characters, with CR LF (one grapheme) kept whole."""
    if "\r\n" not in text:
        return list(text)
    units: list[str] = []
    for i, line in enumerate(text.split("\r\n")):
        if i:
            units.append("\r\n")
        units.extend(line)
    return units


def _split(text: str, encoding: Encoding, limit: int) -> list[str]:
    """Greedy split at grapheme boundaries; a cluster longer than a segment is cut between
    code points (never inside a surrogate pair, and an escape pair is one code point here)."""
    if encoding == "GSM-7":
        # GSM-7 has no combining marks: its only multi-character grapheme is CR LF.
        if "\r\n" not in text and not any(c in text for c in _EXTENSION):
            return [text[i : i + limit] for i in range(0, len(text), limit)]
        return _fill(_gsm_units(text), encoding, limit)
    units: list[str] = []
    for cluster in graphemes(text):
        # A UTF-16 unit count is at most twice the code point count.
        if len(cluster) * 2 <= limit or _measure(cluster, encoding) <= limit:
            units.append(cluster)
        else:
            units.extend(cluster)
    return _fill(units, encoding, limit)


def _fill(units: list[str], encoding: Encoding, limit: int) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    used = 0
    gsm = encoding == "GSM-7"
    for unit in units:
        if len(unit) == 1:
            size = (2 if unit in GSM7_EXTENSION else 1) if gsm else (2 if unit > "\uffff" else 1)
        else:
            size = _measure(unit, encoding)
        if current and used + size > limit:
            parts.append("".join(current))
            current, used = [], 0
        current.append(unit)
        used += size
    if current:
        parts.append("".join(current))
    return parts


def segments(text: str, *, smart_encoding: bool = False) -> SmsSegments:
    """Count and split ``text`` the way an SMS network does.

    With ``smart_encoding=True``, look-alike characters (curly quotes, dashes, « », the
    ellipsis, unusual spaces …) are replaced by GSM-7 ones, but only when that makes the whole
    text GSM-7; what was replaced is reported in ``replacements``.
    """
    replacements: dict[str, str] = {}
    if smart_encoding and not is_gsm7(text):
        candidate, used = _smart(text)
        if used and is_gsm7(candidate):
            text, replacements = candidate, used
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    total = _measure(text, encoding)
    parts = [text] if total <= _SINGLE[encoding] else _split(text, encoding, _CONCAT[encoding])
    return SmsSegments(
        encoding=encoding,
        count=len(parts),
        parts=tuple(parts),
        text=text,
        units=total,
        replacements=replacements,
    )
