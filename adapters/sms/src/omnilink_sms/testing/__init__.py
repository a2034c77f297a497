"""Fakes of the SMS providers for tests: ``FakeTwilio`` and ``FakeVonage``, and kits.

Both fakes subclass ``omnilink.testing.FakeProvider``: plug them into a Hub with
``omnilink.testing.routing_transport(fake)``, or run them on 127.0.0.1 with ``fake.serve()``.
``SmsKit`` (Twilio) and ``VonageSmsKit`` tell the demo and the conformance suite how to drive
the channel against them.
"""

from ._kit import SmsKit, VonageSmsKit
from ._twilio import FakeTwilio
from ._vonage import FakeVonage

__all__ = ["FakeTwilio", "FakeVonage", "SmsKit", "VonageSmsKit"]
