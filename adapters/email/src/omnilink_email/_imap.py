"""IMAP receiving (the poller lands in the next commit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anyio.abc import TaskStatus

from omnilink import ChannelContext, InboundDelivery, InboundMessage

from ._config import ImapConfig


class ImapPoller:
    def __init__(
        self,
        config: ImapConfig,
        context: ChannelContext,
        parse: Callable[[bytes], InboundMessage | InboundDelivery],
    ) -> None:
        self.config = config
        self.context = context
        self.parse = parse

    async def run(self, *, task_status: TaskStatus[Any]) -> None:
        raise NotImplementedError("IMAP receiving is not implemented yet")
