"""weighted_length and is_valid_post: examples from the rules, and invariants under hypothesis."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from omnilink import Capabilities, TextPart, plan
from omnilink._capabilities import strip_numbering
from omnilink_twitter import find_urls, is_valid_post, weighted_length

POST_CAPS = Capabilities(
    text_max=280,
    length_unit="weighted",
    measure=weighted_length,
    split_numbering=True,
    max_messages_per_send=1000,
)


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("hello", 5),
        ("", 0),
        ("你好", 4),  # CJK counts 2
        ("é", 1),
        ("e\u0301", 1),  # NFC makes it one code point
        ("“quoted” – ok…", 15),  # quotes and dashes weigh 1; the ellipsis U+2026 weighs 2
        ("👍", 2),
        ("👍🏽", 2),  # emoji with a skin-tone modifier: one cluster
        ("👨\u200d👩\u200d👧", 2),  # ZWJ family sequence
        ("🇺🇸", 2),  # flag
        ("#️⃣", 2),  # keycap
        ("https://example.com", 23),
        ("http://a.very.long.example.org/with/a/long/path?and=query#frag", 23),
        ("see example.com.", 4 + 23 + 1),
        ("www.example.co.uk/path", 23),
        ("mail a@example.com", 18),  # an email address is not a URL
        ("example.comp", 12),  # unknown TLD: not a URL
    ],
)
def test_weighted_length_examples(text: str, weight: int) -> None:
    assert weighted_length(text) == weight


def test_post_of_280_ascii_characters_is_valid_and_281_is_not() -> None:
    assert is_valid_post("a" * 280)
    assert not is_valid_post("a" * 281)
    assert is_valid_post("你" * 140)
    assert not is_valid_post("你" * 141)


@pytest.mark.parametrize("char", ["\ufffe", "\ufeff", "\uffff"])
def test_invalid_characters_make_a_post_invalid(char: str) -> None:
    assert not is_valid_post(f"hello {char} world")


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_blank_post_is_invalid(text: str) -> None:
    assert not is_valid_post(text)


def test_trailing_punctuation_is_not_part_of_a_url() -> None:
    assert find_urls("go to https://example.com/a.") == [(6, 27)]
    assert find_urls("(https://example.com)") == [(1, 20)]


# --------------------------------------------------------------------------- properties

_ALPHABET = st.sampled_from(
    [
        *"abcXYZ019 .,!?-\n",
        "é",
        "e\u0301",
        "ß",
        "你",
        "好",
        "한",
        "ñ",
        "—",
        "…",
        "“",
        "”",
        "@",
        "#",
        *["👍", "👍🏽", "🇺🇸", "👨\u200d👩\u200d👧", "☺️", "#️⃣", "😀"],
    ]
)
texts = st.lists(_ALPHABET, max_size=60).map("".join)
_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
urls = st.builds(
    lambda scheme, labels, tld, path: f"{scheme}{'.'.join(labels)}.{tld}{path}",
    st.sampled_from(["https://", "http://", "", "www."]),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.sampled_from(["com", "org", "net", "io", "co.uk", "de"]),
    st.sampled_from(["", "/", "/a", "/path/to/page?x=1&y=2", "/a#frag", "/?q=%20"]),
)


@given(urls)
def test_a_url_alone_counts_23(url: str) -> None:
    assert weighted_length(url) == 23


@given(texts, urls, texts)
def test_a_url_counts_23_wherever_it_appears(before: str, url: str, after: str) -> None:
    assert weighted_length(f"{before} {url} {after}") == weighted_length(
        before
    ) + 1 + 23 + 1 + weighted_length(after)


@given(st.text(max_size=80))
def test_nfc_equivalent_texts_weigh_the_same(text: str) -> None:
    for form in ("NFC", "NFD"):
        assert weighted_length(unicodedata.normalize(form, text)) == weighted_length(text)


_EMOJI = st.sampled_from(
    ["👍", "👍🏻", "👍🏿", "🇺🇸", "🇯🇵", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "☺️", "#️⃣", "1️⃣", "😀"]
)


@given(st.lists(_EMOJI, min_size=1, max_size=20))
def test_each_emoji_sequence_counts_2(emojis: list[str]) -> None:
    # Adjacent regional indicators would pair differently, so keep flags apart with a space.
    text = " ".join(emojis)
    assert weighted_length(text) == 2 * len(emojis) + len(emojis) - 1


@given(texts, texts)
def test_weight_is_additive_across_a_space(left: str, right: str) -> None:
    assume(not right.startswith(("\u0301",)))
    assert weighted_length(f"{left} {right}") == weighted_length(left) + 1 + weighted_length(right)


long_texts = st.lists(
    st.one_of(_ALPHABET, _ALPHABET, urls.map(lambda u: f" {u} ")), min_size=1, max_size=400
).map("".join)


@given(long_texts)
def test_planner_reply_chain_posts_are_all_valid_and_reassemble(text: str) -> None:
    assume(text.strip())
    planned = plan([TextPart(text=text)], POST_CAPS)
    pieces = [m.parts[0].text for m in planned.messages if isinstance(m.parts[0], TextPart)]
    assert len(pieces) == len(planned.messages)
    assert all(is_valid_post(p) for p in pieces), [weighted_length(p) for p in pieces]
    if len(pieces) == 1:
        assert pieces == [text]
    else:
        assert "".join(strip_numbering(p) for p in pieces) == text
        assert [p.rsplit("(", 1)[1] for p in pieces] == [
            f"{i}/{len(pieces)})" for i in range(1, len(pieces) + 1)
        ]
