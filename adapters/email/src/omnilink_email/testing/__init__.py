"""Test kit for the email channel: a real SMTP sink, a throwaway Dovecot, webhook builders.

- ``SmtpSink`` (aiosmtpd on 127.0.0.1, needs the ``test`` extra) records mail and answers
  ``SmtpFault`` replies (421/450/550 …) on demand.
- ``mailgun_request`` / ``sendgrid_request`` / ``postmark_request`` build the signed
  inbound-parse requests the providers would post for a raw message.
"""

from ._smtp import ReceivedMail, SmtpFault, SmtpSink, free_port
from ._webhooks import encode_form, mailgun_request, postmark_request, sendgrid_request

__all__ = [
    "ReceivedMail",
    "SmtpFault",
    "SmtpSink",
    "encode_form",
    "free_port",
    "mailgun_request",
    "postmark_request",
    "sendgrid_request",
]
