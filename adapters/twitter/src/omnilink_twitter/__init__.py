"""omnilink's X (Twitter) channel: DMs and public replies, by webhook or by polling."""

from ._text import find_urls, is_valid_post, weighted_length

__all__ = ["find_urls", "is_valid_post", "weighted_length"]
