"""omnilink's email channel: SMTP sending, IMAP receiving, inbound-parse webhooks, threading."""

from ._channel import EMAIL_CAPABILITIES, EmailChannel
from ._compose import HeaderInjectionError, compose_message, validate_address
from ._config import EmailConfig, ImapConfig, SmtpConfig
from ._mime import NotAnEmailError
from ._parse import attachment_bytes, parse_inbound, parse_message, sanitize_html
from ._quotes import strip_quoted
from ._subject import base_subject, reply_subject, subject_key
from ._threading import thread_messages
from ._tokens import (
    conversation_from_address,
    conversation_from_message_id,
    make_message_id,
    reply_address,
    reply_token,
    verify_reply_token,
)

__all__ = [
    "EMAIL_CAPABILITIES",
    "EmailChannel",
    "EmailConfig",
    "HeaderInjectionError",
    "ImapConfig",
    "NotAnEmailError",
    "SmtpConfig",
    "attachment_bytes",
    "base_subject",
    "compose_message",
    "conversation_from_address",
    "conversation_from_message_id",
    "make_message_id",
    "parse_inbound",
    "parse_message",
    "reply_address",
    "reply_subject",
    "reply_token",
    "sanitize_html",
    "strip_quoted",
    "subject_key",
    "thread_messages",
    "validate_address",
    "verify_reply_token",
]
