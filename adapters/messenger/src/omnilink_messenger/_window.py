"""Messenger's messaging window: who may write to a customer, when, and with what tag."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from omnilink import AuthorKind, Remedy, WindowClosedError

STANDARD_WINDOW = timedelta(hours=24)
"""A page may answer with ``RESPONSE`` this long after the customer's last message."""
HUMAN_AGENT_WINDOW = timedelta(days=7)
"""With the ``HUMAN_AGENT`` tag a human agent may answer this long after it."""

RESPONSE = {"messaging_type": "RESPONSE"}
HUMAN_AGENT = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}


def window_options(
    *,
    channel: str,
    page_id: str,
    last_inbound_at: datetime | None,
    now: datetime,
    author_kind: AuthorKind,
    automatic: bool,
    human_agent_enabled: bool,
    other_channels: Sequence[str] = (),
) -> dict[str, str]:
    """The send options that make a send allowed now, or WindowClosedError with remedies.

    Inside 24 hours of the customer's last message: ``RESPONSE``. Up to 7 days: the
    ``HUMAN_AGENT`` tag, when the page has it and a human agent (not automation) writes.
    Both bounds are exclusive: at exactly 24 hours the standard window is closed.
    """
    elsewhere = [
        Remedy("use_channel", f"continue the conversation on {name}, where the customer is reachable", name)
        for name in other_channels
    ]
    if last_inbound_at is None:
        raise WindowClosedError(
            "Messenger cannot start a conversation: the customer has not written to this page",
            channel=channel,
            remedies=elsewhere,
            rule="no_inbound",
        )
    age = now - last_inbound_at
    if age < STANDARD_WINDOW:
        return dict(RESPONSE)
    human = author_kind is AuthorKind.AGENT and not automatic
    if age < HUMAN_AGENT_WINDOW:
        if human_agent_enabled and human:
            return dict(HUMAN_AGENT)
        remedies = list(elsewhere)
        if not human_agent_enabled:
            remedies.append(
                Remedy(
                    "use_tag",
                    f"enable the HUMAN_AGENT tag for page {page_id} (needs Meta's approval): human "
                    "agents may then answer up to 7 days after the customer's last message",
                )
            )
        else:
            remedies.append(
                Remedy(
                    "use_tag",
                    "have a human agent send it: the HUMAN_AGENT tag allows only human replies "
                    "up to 7 days after the customer's last message",
                )
            )
        remedies.append(Remedy("wait", "the window reopens when the customer writes again"))
        raise WindowClosedError(
            f"the customer last wrote {_ago(age)} ago; Messenger allows normal replies for 24 hours",
            channel=channel,
            remedies=remedies,
            rule="window_24h",
        )
    raise WindowClosedError(
        f"the customer last wrote {_ago(age)} ago; Messenger allows no reply after 7 days",
        channel=channel,
        remedies=[*elsewhere, Remedy("wait", "the window reopens when the customer writes again")],
        rule="window_7d",
    )


def _ago(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"
