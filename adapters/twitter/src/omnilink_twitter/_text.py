"""How X counts a post: twitter-text's v3 weighted length, and whether a post is valid.

The rules (twitter-text v3 configuration): the text is NFC-normalised; every URL counts 23
whatever its length; every emoji grapheme cluster counts 2; a code point in U+0000–U+10FF,
U+2000–U+200D, U+2010–U+201F or U+2032–U+2037 counts 1 and every other code point counts 2
(so CJK counts 2). U+FFFE, U+FEFF and U+FFFF make a post invalid. A post may weigh 280.

The URL matcher is ours, not twitter-text's: it finds ``http``/``https`` URLs whose host has a
dot, and bare domains ending in a common top-level domain (see ``_TLDS``). It does not know
every TLD, internationalised bare domains, or URLs whose last character is a closing bracket
(``…_(band)`` counts the ``)`` as one more character). See ``docs/adapters/twitter.md``.
"""

from __future__ import annotations

import re
import unicodedata

import regex

POST_MAX_WEIGHT = 280
"""The longest valid post, in weighted units."""
URL_WEIGHT = 23
"""What any URL counts, because X shortens every link to a t.co link of that length."""
EMOJI_WEIGHT = 2

_INVALID = frozenset("\ufffe\ufeff\uffff")

# Common generic TLDs and the country codes people write bare. Longer names first so the
# alternation prefers ``.co.uk``-style endings correctly under backtracking.
_TLD_NAMES = """
    com net org info biz edu gov mil int name pro aero coop museum mobi jobs travel
    io co ai app dev me tv ly gg xyz shop online site tech store blog news cloud live page
    email link club space website wiki media agency digital design studio help support
    uk us de fr es it nl be ch at se no dk fi pl pt ie ca au nz jp cn kr in br mx ru eu
    asia cc fm to is la sh so ws ar cl cz gr hu il ro sg tr tw ua za hk id my ph th vn
"""
_TLDS = sorted(_TLD_NAMES.split(), key=lambda t: (-len(t), t))
_TLD = "(?:" + "|".join(_TLDS) + ")"
# A URL never ends with sentence punctuation or a closing bracket.
_END = r"""[^\s.,:;!?'"()\[\]{}<>…]"""
_PATH = rf"(?:[/?#](?:[^\s]*{_END})?)"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"

_URL = re.compile(
    # With a scheme: any host of dotted labels (letters of any script) ending in a TLD-like label.
    rf"(?<![A-Za-z0-9@＠$#＃])https?://(?:[\w-]+\.)+[^\W\d_]{{2,}}(?::\d{{1,5}})?{_PATH}?"
    # Bare: ASCII labels and a known TLD, not part of an email address or a longer word.
    rf"|(?<![\w@＠$#＃.\-/:])(?:{_LABEL}\.)+{_TLD}(?![\w@＠-])(?::\d{{1,5}})?{_PATH}?",
    re.IGNORECASE,
)
_DOTTED_TOKEN = re.compile(r"(?<!\S)[^\s.]*\.\S*")

_EMOJI_START = regex.compile(
    r"\p{Emoji_Presentation}"
    r"|\p{Extended_Pictographic}(?=[\uFE0F\u200D\U0001F3FB-\U0001F3FF])"
    r"|[0-9#*]\uFE0F?\u20E3"
)


# Code points that weigh 2 (outside the v3 ranges that weigh 1).
_HEAVY = re.compile("[^\u0000-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]")
# Grapheme clusters that may be emoji: they start with a pictograph, a regional indicator, or
# are a keycap sequence. Searching only from such starts keeps plain text off the slow path.
_EMOJI_CANDIDATE = regex.compile(
    r"(?=\p{Extended_Pictographic}|\p{Emoji_Presentation}|[0-9#*]\uFE0F?\u20E3)\X"
)


def _code_points_weight(text: str) -> int:
    return len(text) + len(_HEAVY.findall(text))


def _plain_weight(text: str) -> int:
    """Weight of text that holds no URL: emoji clusters count 2, other code points by range."""
    if text.isascii():
        return len(text)
    total = _code_points_weight(text)
    for match in _EMOJI_CANDIDATE.finditer(text):
        cluster = match.group()
        if _EMOJI_START.match(cluster):
            total += EMOJI_WEIGHT - _code_points_weight(cluster)
    return total


def find_urls(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of the URLs our matcher finds in ``text`` (not normalised)."""
    if "." not in text:
        return []
    # A URL never contains whitespace and may follow it, so matching inside each
    # whitespace-delimited token that holds a dot finds exactly what matching the whole
    # text would, while skipping the plain words.
    spans: list[tuple[int, int]] = []
    for token in _DOTTED_TOKEN.finditer(text):
        base = token.start()
        spans.extend((base + m.start(), base + m.end()) for m in _URL.finditer(token.group()))
    return spans


def weighted_length(text: str) -> int:
    """How much ``text`` weighs as an X post, under twitter-text's v3 rules (see module docs)."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    pos = 0
    for start, end in find_urls(text):
        total += _plain_weight(text[pos:start]) + URL_WEIGHT
        pos = end
    return total + _plain_weight(text[pos:])


def invalid_characters(text: str) -> list[str]:
    """The characters that make a post invalid wherever they appear (U+FFFE, U+FEFF, U+FFFF)."""
    return [c for c in text if c in _INVALID]


def is_valid_post(text: str) -> bool:
    """True when X would accept ``text`` as a post: not blank, no invalid character, ≤ 280."""
    normalised = unicodedata.normalize("NFC", text)
    if not normalised.strip() or invalid_characters(normalised):
        return False
    return weighted_length(normalised) <= POST_MAX_WEIGHT
