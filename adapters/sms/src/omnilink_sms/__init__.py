"""omnilink-sms: SMS and MMS for omnilink through Twilio or Vonage.

GSM-7/UCS-2 segment counting, Twilio signature checks, STOP/START/HELP compliance, and
concatenated-message reassembly. The bundled fakes live in ``omnilink_sms.testing``.
"""

from ._channel import MMS_MAX_BYTES, SMS_CAPABILITIES, SmsChannel, sms_capabilities
from ._config import SmsConfig, SmsSender, TwilioSettings, VonageSettings
from ._phone import to_e164
from ._segments import GSM7_BASIC, GSM7_EXTENSION, SMART_ENCODING, SmsSegments, is_gsm7, segments
from ._signature import twilio_signature, verify_twilio_signature
from ._wire import HELP_KEYWORDS, OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "HELP_KEYWORDS",
    "MMS_MAX_BYTES",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "SMART_ENCODING",
    "SMS_CAPABILITIES",
    "SmsChannel",
    "SmsConfig",
    "SmsSegments",
    "SmsSender",
    "TwilioSettings",
    "VonageSettings",
    "is_gsm7",
    "segments",
    "sms_capabilities",
    "to_e164",
    "twilio_signature",
    "verify_twilio_signature",
]
