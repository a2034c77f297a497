"""thread_messages: JWZ threading of a mailbox, independent of input order."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from omnilink_email import thread_messages


def mail(
    mid: str | None,
    subject: str = "Hello",
    *,
    day: int = 1,
    refs: tuple[str, ...] = (),
    irt: str | None = None,
) -> bytes:
    lines = [
        "From: a@example.com",
        "To: b@example.com",
        f"Subject: {subject}",
        f"Date: {day:02d} Jan 2024 10:00:00 +0000",
    ]
    if mid is not None:
        lines.append(f"Message-ID: <{mid}>")
    if refs:
        lines.append("References: " + " ".join(f"<{r}>" for r in refs))
    if irt:
        lines.append(f"In-Reply-To: <{irt}>")
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()


def test_replies_join_their_parent_by_references_and_in_reply_to() -> None:
    raws = [
        mail("1@x", "Order 1", day=1),
        mail("2@x", "Re: Order 1", day=2, refs=("1@x",)),
        mail("3@x", "RE: Order 1", day=3, irt="2@x"),
        mail("4@x", "Other", day=4),
    ]
    assert thread_messages(raws) == [["1@x", "2@x", "3@x"], ["4@x"]]


def test_missing_parent_still_groups_its_children() -> None:
    raws = [
        mail("2@x", "A", day=2, refs=("gone@x",)),
        mail("3@x", "B", day=3, refs=("gone@x",)),
    ]
    assert thread_messages(raws) == [["2@x", "3@x"]]


def test_roots_with_the_same_base_subject_are_grouped() -> None:
    raws = [
        mail("1@x", "Invoice", day=1),
        mail("2@x", "Fwd: AW: invoice", day=2),
        mail("3@x", "Other", day=3),
    ]
    assert thread_messages(raws) == [["1@x", "2@x"], ["3@x"]]


def test_reference_loops_are_broken() -> None:
    raws = [
        mail("1@x", "A", day=1, refs=("2@x",)),
        mail("2@x", "B", day=2, refs=("1@x",)),
        mail("3@x", "C", day=3, refs=("3@x",)),
    ]
    groups = thread_messages(raws)
    assert sorted(m for g in groups for m in g) == ["1@x", "2@x", "3@x"]
    assert ["1@x", "2@x"] in groups


def test_duplicate_message_ids_count_once_and_missing_ids_are_synthesised() -> None:
    raws = [mail("1@x", day=1), mail("1@x", day=1), mail(None, "Lonely", day=2)]
    groups = thread_messages(raws)
    flat = [m for g in groups for m in g]
    assert flat.count("1@x") == 1
    assert len(flat) == 2
    assert any(m.endswith("@omnilink.invalid") for m in flat)


def test_undecodable_headers_keep_the_message() -> None:
    assert thread_messages([b"\xff\xfe\x00garbage"])[0][0].endswith("@omnilink.invalid")


SUBJECTS = ["Hello", "Re: Hello", "Order", "Fwd: Order", "", "Question"]


@st.composite
def mailbox(draw: st.DrawFn) -> list[bytes]:
    n = draw(st.integers(1, 25))
    ids = [f"{i}@x" for i in range(n)]
    out = []
    for i, mid in enumerate(ids):
        refs = tuple(draw(st.lists(st.sampled_from([*ids, "ghost@x"]), max_size=4)))
        irt = draw(st.none() | st.sampled_from(ids))
        out.append(
            mail(mid, draw(st.sampled_from(SUBJECTS)), day=draw(st.integers(1, 28)), refs=refs, irt=irt)
        )
        if draw(st.booleans()) and i % 7 == 0:
            out.append(out[-1])  # a duplicate delivery
    return out


@given(mailbox(), st.randoms(use_true_random=False))
def test_grouping_is_the_same_for_any_order(raws: list[bytes], rnd: object) -> None:
    shuffled = list(raws)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert thread_messages(raws) == thread_messages(shuffled)


@given(mailbox())
def test_threading_never_loses_or_duplicates_a_message(raws: list[bytes]) -> None:
    groups = thread_messages(raws)
    flat = [m for g in groups for m in g]
    expected = {raw.split(b"Message-ID: <")[1].split(b">")[0].decode() for raw in raws}
    assert Counter(flat) == Counter(expected)
    assert all(groups)


def test_client_styles_thread_into_one_conversation() -> None:
    """Gmail keeps References, Outlook only In-Reply-To (and "AW:"), Apple Mail both, a
    mobile client none: JWZ puts them all in one thread (the last by subject)."""
    raws = [
        mail("start@acme.test", "Invoice 42", day=1),
        mail("gmail@mail.gmail.com", "Re: Invoice 42", day=2, refs=("start@acme.test",)),
        mail("outlook@eurprd.outlook.com", "AW: Invoice 42", day=3, irt="gmail@mail.gmail.com"),
        mail(
            "apple@icloud.com",
            "Re: Invoice 42",
            day=4,
            refs=("start@acme.test", "gmail@mail.gmail.com", "outlook@eurprd.outlook.com"),
            irt="outlook@eurprd.outlook.com",
        ),
        mail("mobile@phone.example", "RE: invoice 42", day=5),
        mail("other@x", "Something else", day=6),
    ]
    assert thread_messages(raws) == [
        [
            "start@acme.test",
            "gmail@mail.gmail.com",
            "outlook@eurprd.outlook.com",
            "apple@icloud.com",
            "mobile@phone.example",
        ],
        ["other@x"],
    ]


def test_thunderbird_reply_to_a_message_we_never_saw_stays_with_its_siblings() -> None:
    raws = [
        mail("a@x", "Re: Plans", day=2, refs=("root@x", "missing@x")),
        mail("b@x", "Re: Plans", day=3, refs=("root@x",)),
    ]
    assert thread_messages(raws) == [["a@x", "b@x"]]
