"""The messaging window: check_send's choices, and agreement with the fake over random timelines."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from messenger_support import AGENT_PAGE, PAGE, Clock, make_fake, open_channel

from omnilink import (
    Author,
    AuthorKind,
    Contact,
    Conversation,
    OutboundMessage,
    PermanentSendError,
    SendContext,
    TextPart,
    ThreadRef,
    WindowClosedError,
)
from omnilink_messenger import CAPABILITIES
from omnilink_messenger._window import window_options

pytestmark = pytest.mark.anyio
PSID = "6300000000000003"
NOW = Clock().value


def options(
    age: timedelta | None,
    *,
    kind: AuthorKind = AuthorKind.AGENT,
    enabled: bool = True,
    automatic: bool = False,
    others: tuple[str, ...] = (),
) -> dict[str, str]:
    return window_options(
        channel="messenger",
        page_id=PAGE,
        last_inbound_at=None if age is None else NOW - age,
        now=NOW,
        author_kind=kind,
        automatic=automatic,
        human_agent_enabled=enabled,
        other_channels=others,
    )


def test_capabilities_declare_the_window_and_no_cold_start() -> None:
    assert CAPABILITIES.window is not None
    assert CAPABILITIES.window.standard == timedelta(hours=24)
    assert CAPABILITIES.window.extended == timedelta(days=7)
    assert CAPABILITIES.window.extended_by == "HUMAN_AGENT tag"
    assert CAPABILITIES.can_start_conversation is False
    assert CAPABILITIES.text_max == 2000


@pytest.mark.parametrize(
    "age", [timedelta(0), timedelta(hours=23, minutes=59, seconds=59), timedelta(seconds=-5)]
)
def test_inside_24_hours_a_reply_is_a_response(age: timedelta) -> None:
    assert options(age, kind=AuthorKind.AUTOMATION, enabled=False) == {"messaging_type": "RESPONSE"}


@pytest.mark.parametrize("age", [timedelta(hours=24), timedelta(days=6, hours=23, minutes=59)])
def test_human_agent_may_answer_for_7_days_with_the_tag(age: timedelta) -> None:
    assert options(age) == {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}


def test_no_inbound_ever_is_refused_with_other_channels_as_remedies() -> None:
    with pytest.raises(WindowClosedError) as info:
        options(None, others=("email", "sms"))
    assert info.value.rule == "no_inbound"
    assert [(r.kind, r.channel) for r in info.value.remedies] == [
        ("use_channel", "email"),
        ("use_channel", "sms"),
    ]


def test_after_24_hours_without_the_tag_enabled_the_remedy_names_it() -> None:
    with pytest.raises(WindowClosedError) as info:
        options(timedelta(hours=30), enabled=False, others=("email",))
    kinds = [r.kind for r in info.value.remedies]
    assert kinds[0] == "use_channel"
    assert "use_tag" in kinds
    assert any("HUMAN_AGENT" in r.detail and "enable" in r.detail for r in info.value.remedies)


@pytest.mark.parametrize(("kind", "automatic"), [(AuthorKind.AUTOMATION, False), (AuthorKind.AGENT, True)])
def test_after_24_hours_automation_never_gets_the_human_agent_tag(kind: AuthorKind, automatic: bool) -> None:
    with pytest.raises(WindowClosedError) as info:
        options(timedelta(hours=30), kind=kind, automatic=automatic)
    assert any(r.kind == "use_tag" and "human agent" in r.detail for r in info.value.remedies)


def test_after_7_days_nothing_is_allowed() -> None:
    with pytest.raises(WindowClosedError) as info:
        options(timedelta(days=7), others=("email",))
    assert info.value.rule == "window_7d"
    assert "use_tag" not in [r.kind for r in info.value.remedies]


def _context(
    page: str, last: datetime | None, now: datetime, kind: AuthorKind, automatic: bool = False
) -> SendContext:
    contact = Contact(id="con_1")
    return SendContext(
        conversation=Conversation(id="cnv_1", contact_id=contact.id),
        contact=contact,
        thread=ThreadRef(channel="messenger", account=page, key=PSID),
        author=Author(kind=kind),
        last_inbound_at=last,
        now=now,
        automatic=automatic,
    )


async def test_check_send_uses_the_page_setting(clock: Clock) -> None:
    fake = make_fake(clock)
    async with open_channel(fake, clock) as channel:
        late = clock() - timedelta(days=2)
        assert await channel.check_send(_context(AGENT_PAGE, late, clock(), AuthorKind.AGENT)) == {
            "messaging_type": "MESSAGE_TAG",
            "tag": "HUMAN_AGENT",
        }
        with pytest.raises(WindowClosedError):
            await channel.check_send(_context(PAGE, late, clock(), AuthorKind.AGENT))


steps = st.lists(
    st.tuples(
        st.sampled_from(["user", "reply", "wait"]),
        st.one_of(
            st.integers(0, 48 * 3600),
            st.sampled_from([24 * 3600 - 1, 24 * 3600, 24 * 3600 + 1, 7 * 86400 - 1, 7 * 86400]),
            st.integers(0, 9 * 86400),
        ),
        st.sampled_from([AuthorKind.AGENT, AuthorKind.AGENT, AuthorKind.AUTOMATION]),
    ),
    min_size=1,
    max_size=25,
)


@given(page=st.sampled_from([PAGE, AGENT_PAGE]), timeline=steps)
async def test_channel_never_sends_what_the_fake_would_refuse(
    page: str, timeline: list[tuple[str, int, AuthorKind]]
) -> None:
    clock = Clock()
    fake = make_fake(clock)
    last: dict[str, datetime] = {}
    async with open_channel(fake, clock) as channel:
        for action, seconds, kind in timeline:
            if action == "wait":
                clock.advance(timedelta(seconds=seconds))
            elif action == "user":
                fake.message_event(page, PSID, "hello")
                last[page] = clock()
            else:
                ctx = _context(page, last.get(page), clock(), kind)
                try:
                    chosen = await channel.check_send(ctx)
                except WindowClosedError:
                    allowed_any = fake.window_allows(page, PSID, "RESPONSE") or (
                        kind is AuthorKind.AGENT
                        and fake.window_allows(page, PSID, "MESSAGE_TAG", "HUMAN_AGENT")
                    )
                    assert not allowed_any, "the channel refused a send the fake would accept"
                    continue
                assert fake.window_allows(page, PSID, chosen["messaging_type"], chosen.get("tag"))
                before = len(fake.sent)
                out = OutboundMessage(
                    message_id="msg_1",
                    conversation_id="cnv_1",
                    account=page,
                    thread_key=PSID,
                    recipient=PSID,
                    parts=(TextPart(text="reply"),),
                    send_options=chosen,
                )
                try:
                    await channel.send(out)
                except PermanentSendError as exc:  # pragma: no cover - would be a disagreement
                    raise AssertionError(f"the fake refused an allowed send: {exc}") from exc
                assert len(fake.sent) == before + 1
