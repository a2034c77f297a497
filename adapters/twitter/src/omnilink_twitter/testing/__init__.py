"""Test kit for the X channel: ``FakeX`` (the API and webhook source) and ``TwitterKit``."""

from ._fake import DEFAULT_LIMITS, DmEvent, FakeUser, FakeX, FakeXSettings, Post
from ._kit import TwitterKit

__all__ = ["DEFAULT_LIMITS", "DmEvent", "FakeUser", "FakeX", "FakeXSettings", "Post", "TwitterKit"]
