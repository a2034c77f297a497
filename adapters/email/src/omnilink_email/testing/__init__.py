"""Test kit for the email channel: a real SMTP sink, a throwaway Dovecot, webhook builders.

- ``SmtpSink`` (aiosmtpd on 127.0.0.1, needs the ``test`` extra) records mail and answers
  ``SmtpFault`` replies (421/450/550 …) on demand.
- ``Dovecot`` runs a throwaway Dovecot IMAP server on 127.0.0.1 (``ensure_dovecot`` installs
  Debian's package when missing and we are root) and delivers mail into its maildir.
- ``EmailKit`` / ``FakeMailRelay``: the AdapterKit the demo and the conformance suite drive
  (Mailgun in, SMTP sink out, DSNs for delivery reports).
- ``mailgun_request`` / ``sendgrid_request`` / ``postmark_request`` build the signed
  inbound-parse requests the providers would post for a raw message.
"""

from ._dovecot import DOVECOT, Dovecot, ensure_dovecot
from ._kit import EmailKit, FakeMailRelay
from ._smtp import ReceivedMail, SmtpFault, SmtpSink, free_port
from ._webhooks import encode_form, mailgun_request, postmark_request, sendgrid_request

__all__ = [
    "DOVECOT",
    "Dovecot",
    "EmailKit",
    "FakeMailRelay",
    "ReceivedMail",
    "SmtpFault",
    "SmtpSink",
    "encode_form",
    "ensure_dovecot",
    "free_port",
    "mailgun_request",
    "postmark_request",
    "sendgrid_request",
]
