"""omnilink's X (Twitter) channel: DMs and public replies, by webhook or by polling."""

from ._channel import (
    DM_CAPABILITIES,
    POST_CAPABILITIES,
    TwitterChannel,
    dm_link,
    invite_to_dm,
)
from ._config import TwitterConfig
from ._signing import crc_response_token, sign_body, verify_signature
from ._text import find_urls, is_valid_post, weighted_length
from ._wire import dm_conversation_id, dm_thread_key, post_thread_key, snowflake_time

__all__ = [
    "DM_CAPABILITIES",
    "POST_CAPABILITIES",
    "TwitterChannel",
    "TwitterConfig",
    "crc_response_token",
    "dm_conversation_id",
    "dm_link",
    "dm_thread_key",
    "find_urls",
    "invite_to_dm",
    "is_valid_post",
    "post_thread_key",
    "sign_body",
    "snowflake_time",
    "verify_signature",
    "weighted_length",
]
