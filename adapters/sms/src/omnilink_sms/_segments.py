"""How an SMS text is encoded (GSM-7 or UCS-2) and split into the segments a phone receives.

The rules are GSM 03.38's: characters of the basic table take one septet, characters of the
extension table two (an escape and the character); any other character makes the whole text
UCS-2, counted in UTF-16 code units. A single SMS carries 160 septets or 70 units; a
concatenated one 153 septets or 67 units per segment, because the user data header takes six
octets. A segment never ends inside an escape pair, a surrogate pair or a grapheme cluster.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from operator import add
from typing import Literal

import regex

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


_CLUSTERING = regex.compile(
    r"[\r\p{GCB=Extend}\p{GCB=ZWJ}\p{GCB=Regional_Indicator}\p{GCB=Prepend}\p{GCB=SpacingMark}"
    r"\p{GCB=L}\p{GCB=V}\p{GCB=T}\p{GCB=LV}\p{GCB=LVT}\p{GCB=Control}]"
)
"""Characters that may join a grapheme cluster with a neighbour; without any, every code
point is a cluster of its own (UAX #29 rules GB3-GB9b, GB11-GB13)."""

_DOUBLE: dict[Encoding, Callable[[str], bool]] = {
    "GSM-7": GSM7_EXTENSION.__contains__,  # escape + character
    "UCS-2": "\uffff".__lt__,  # a surrogate pair
}
"""Which code points cost two septets or two UTF-16 units instead of one."""


def _split(text: str, encoding: Encoding, limit: int) -> list[str]:
    """Greedy split at grapheme boundaries; a cluster longer than a segment is cut between
    code points (never inside a surrogate pair; an escape pair is one code point here)."""
    # GSM-7 has no combining marks: its only multi-character grapheme is CR LF.
    if encoding == "GSM-7" and "\r\n" not in text:
        units: list[str] = list(text)
    elif _CLUSTERING.search(text) is None:
        units = list(text)  # every code point is its own grapheme
    else:
        units = graphemes(text)
        # A cluster costs at most two per code point, so this is almost always false.
        if max(map(len, units)) * 2 > limit:
            units = [piece for cluster in units for piece in _fitting(cluster, encoding, limit)]
    return _fill(text, units, _DOUBLE[encoding], limit)


def _fitting(cluster: str, encoding: Encoding, limit: int) -> list[str]:
    """A grapheme cluster as one unit, or its code points when it is longer than a segment."""
    return [cluster] if _measure(cluster, encoding) <= limit else list(cluster)


def _fill(text: str, units: list[str], double: Callable[[str], bool], limit: int) -> list[str]:
    """Greedy fill: each segment takes as many whole units as fit in ``limit``.

    The cost of the text up to a unit boundary is its code points plus those that count
    double; both prefix sums are built without a Python-level loop.
    """
    offset_at = list(accumulate(map(len, units), initial=0))
    doubles = list(accumulate(map(double, text), initial=0))
    cost_at = list(map(add, offset_at, map(doubles.__getitem__, offset_at)))
    parts: list[str] = []
    start, count = 0, len(units)
    while start < count:
        end = max(bisect_right(cost_at, cost_at[start] + limit) - 1, start + 1)
        parts.append(text[offset_at[start] : offset_at[end]])
        start = end
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
