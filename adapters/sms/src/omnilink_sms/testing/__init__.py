"""Fakes of the SMS providers for tests: ``FakeTwilio`` and ``FakeVonage``.

Both subclass ``omnilink.testing.FakeProvider``: plug them into a Hub with
``omnilink.testing.routing_transport(fake)``, or run them on 127.0.0.1 with ``fake.serve()``.
"""

from ._twilio import FakeTwilio
from ._vonage import FakeVonage

__all__ = ["FakeTwilio", "FakeVonage"]
