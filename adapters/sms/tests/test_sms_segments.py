"""GSM-7/UCS-2 detection and segment splitting, against an independent tally."""

from __future__ import annotations

import regex
from hypothesis import given
from hypothesis import strategies as st

from omnilink_sms import GSM7_BASIC, GSM7_EXTENSION, segments

# GSM 03.38 in its table order (0x00-0x7F); 0x1B is the escape, not a character.
GSM_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT_TABLE = "\f^{}\\[~]|€"


def tally(text: str) -> tuple[str, int]:
    """A plain per-character count: (encoding, septets or UTF-16 units)."""
    septets = 0
    for char in text:
        if char != "\x1b" and char in GSM_TABLE:
            septets += 1
        elif char in GSM_EXT_TABLE:
            septets += 2
        else:
            units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
            return "UCS-2", units
    return "GSM-7", septets


def cost(text: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return sum(2 if c in GSM_EXT_TABLE else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


TOKENS = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        " ",
        "\n",
        "\r\n",
        "@",
        "£",
        "Ç",
        "é",
        "Ø",
        "Δ",
        "_",  # GSM basic
        "€",
        "[",
        "]",
        "{",
        "}",
        "\\",
        "^",
        "~",
        "|",
        "\f",  # GSM extension
        "ç",
        "á",
        "í",
        "ó",
        "ú",
        "õ",
        "`",
        "ł",
        "ş",  # outside GSM
        "😀",
        "👍🏽",
        "🇩🇪",
        "👨‍👩‍👧‍👦",
        "❤️",
        "e\u0301",
        "\u0915\u094d\u0937",  # emoji, flags, ZWJ, clusters
        "漢",
        "字",
        "한",
        "ー",  # CJK
        "“",
        "”",
        "’",
        "–",
        "—",
        "…",
        "«",
        "»",
        "\u00a0",  # look-alikes
    ]
)
TEXTS = st.one_of(
    st.lists(TOKENS, max_size=260).map("".join),
    st.lists(st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=400).map("".join),
    st.text(max_size=200),
)


def test_alphabets_match_gsm_03_38() -> None:
    assert set(GSM_TABLE) - {"\x1b"} == GSM7_BASIC
    assert len(GSM7_BASIC) == 127
    assert set(GSM_EXT_TABLE) == GSM7_EXTENSION


@given(TEXTS)
def test_segments_agree_with_an_independent_tally(text: str) -> None:
    result = segments(text)
    encoding, units = tally(text)
    assert result.encoding == encoding
    assert result.units == units
    single = 160 if encoding == "GSM-7" else 70
    assert (result.count == 1) == (units <= single)
    assert result.count == len(result.parts)


@given(TEXTS)
def test_parts_reassemble_and_respect_limits(text: str) -> None:
    result = segments(text)
    assert "".join(result.parts) == text
    if result.count > 1:
        limit = 153 if result.encoding == "GSM-7" else 67
        assert all(0 < cost(part, result.encoding) <= limit for part in result.parts)


@given(TEXTS)
def test_parts_never_split_a_grapheme_and_are_filled_greedily(text: str) -> None:
    result = segments(text)
    if result.count == 1:
        return
    limit = 153 if result.encoding == "GSM-7" else 67
    clusters = regex.findall(r"\X", text)
    boundaries, offset = {0}, 0
    for cluster in clusters:
        offset += len(cluster)
        boundaries.add(offset)
    offset = 0
    for part, following in zip(result.parts, result.parts[1:], strict=False):
        offset += len(part)
        assert offset in boundaries, f"a segment ends inside a grapheme at {offset}"
        # Greedy: the next grapheme would not have fitted.
        nxt = regex.match(r"\X", following)
        assert nxt is not None
        assert cost(part + nxt.group(), result.encoding) > limit
        part.encode("utf-16-le")  # no lone surrogate


def test_exactly_160_gsm_characters_fit_one_segment() -> None:
    assert segments("a" * 160).count == 1
    result = segments("a" * 161)
    assert (result.count, [len(p) for p in result.parts]) == (2, [153, 8])


def test_extension_characters_count_two_septets_and_are_never_split() -> None:
    result = segments("€" * 80)
    assert (result.encoding, result.units, result.count) == ("GSM-7", 160, 1)
    result = segments("a" * 152 + "€" + "b" * 10)
    assert result.parts[0] == "a" * 152
    assert result.parts[1].startswith("€")


def test_one_non_gsm_character_makes_the_whole_text_ucs2() -> None:
    result = segments("Hello ç")
    assert (result.encoding, result.units) == ("UCS-2", 7)
    assert segments("ç" * 70).count == 1
    assert [len(p) for p in segments("ç" * 71).parts] == [67, 4]


def test_lowercase_c_cedilla_and_backtick_are_not_gsm() -> None:
    assert segments("Ç").encoding == "GSM-7"
    assert segments("ç").encoding == "UCS-2"
    assert segments("`").encoding == "UCS-2"


def test_emoji_count_their_utf16_units_and_surrogates_stay_together() -> None:
    assert segments("😀").units == 2
    assert segments("👨‍👩‍👧‍👦").units == 11
    result = segments("ç" * 66 + "😀" + "ç" * 10)
    assert result.parts[0] == "ç" * 66
    assert result.parts[1].startswith("😀")


def test_empty_text_is_one_gsm_segment() -> None:
    result = segments("")
    assert (result.encoding, result.count, result.parts) == ("GSM-7", 1, ("",))


def test_smart_encoding_maps_look_alikes_and_reports_them() -> None:
    text = "“Quoted” – it’s «fine»…\u00a0ok"
    plain = segments(text)
    assert plain.encoding == "UCS-2"
    assert plain.replacements == {}
    smart = segments(text, smart_encoding=True)
    assert smart.encoding == "GSM-7"
    assert smart.text == '"Quoted" - it\'s "fine"... ok'
    assert smart.replacements == {"“": '"', "”": '"', "–": "-", "’": "'", "«": '"', "»": '"', "…": "...",
                                  "\u00a0": " "}  # fmt: skip


def test_smart_encoding_leaves_text_alone_when_it_cannot_reach_gsm() -> None:
    smart = segments("“Hi” 😀", smart_encoding=True)
    assert (smart.encoding, smart.text, smart.replacements) == ("UCS-2", "“Hi” 😀", {})


@given(TEXTS)
def test_smart_encoding_never_makes_a_text_longer_in_segments_unless_it_reached_gsm(text: str) -> None:
    smart = segments(text, smart_encoding=True)
    if smart.replacements:
        assert smart.encoding == "GSM-7"
        assert "".join(smart.parts) == smart.text
    else:
        assert smart.text == text
