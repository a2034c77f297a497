"""Tolerant low-level reading of MIME: headers, charsets, message ids, dates, file names."""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
import re
import unicodedata
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from omnilink import PayloadError

__all__ = [
    "NotAnEmailError",
    "decode_bytes",
    "decode_words",
    "header_text",
    "message_ids",
    "parse_date",
    "safe_filename",
    "synthetic_message_id",
]


class NotAnEmailError(PayloadError):
    """The input is not an email message we can read (no sender, not MIME at all)."""


# Labels that mail in the wild uses for a superset, or that codecs does not know.
_CHARSET_ALIASES = {
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "default": "utf-8",
}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        try:
            return codecs.lookup(name.replace("-", "_")).name
        except LookupError:
            return None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode a body whatever its label says: the declared charset when it fits, UTF-8 when the
    label is a single-byte Western one but the bytes are valid UTF-8 (the usual mislabel), then
    windows-1252 with replacement. Never raises."""
    codec = _codec(charset)
    is_ascii = data.isascii()
    if codec in (None, "cp1252", "latin_1", "ascii", "iso8859-1") and not is_ascii:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def decode_words(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError, AssertionError):
        chunks: list[str] = []
        try:
            for chunk, charset in decode_header(value):
                chunks.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
        except (ValueError, LookupError, UnicodeError, AssertionError):
            return value
        return "".join(chunks)


def _clean_header(value: str) -> str:
    if not value.isascii():
        value = _unescape_surrogates(value)
    if "=?" in value:
        value = decode_words(value)
    if "\n" in value or "\r" in value or "  " in value or "\t" in value:
        value = " ".join(value.split())
    return value.strip()


def _unescape_surrogates(value: str) -> str:
    # The bytes parser keeps undecodable header bytes as surrogates; recover them as text.
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        raw = value.encode("ascii", "surrogateescape")
        return decode_bytes(raw, None)
    return value


def header_text(msg: Message, name: str) -> str | None:
    """A header's decoded text (encoded words resolved), or None when absent.

    Reads the raw value and decodes it ourselves, so a malformed header never raises.
    """
    lowered = name.lower()
    for key, value in msg.raw_items() if hasattr(msg, "raw_items") else msg.items():
        if key.lower() == lowered:
            return _clean_header(str(value))
    return None


def header_all(msg: Message, name: str) -> list[str]:
    lowered = name.lower()
    out: list[str] = []
    for key, value in msg.raw_items() if hasattr(msg, "raw_items") else msg.items():
        if key.lower() == lowered:
            out.append(_clean_header(str(value)))
    return out


def addresses(msg: Message, *names: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs from address headers; tolerant of junk."""
    values: list[str] = []
    for name in names:
        values.extend(header_all(msg, name))
    out: list[tuple[str, str]] = []
    for display, addr in getaddresses(values):
        addr = addr.strip().strip("<>").strip()
        if "@" in addr and not any(c.isspace() for c in addr) and len(addr) <= 320:
            out.append((display.strip(), addr.lower()))
    return out


_ID = re.compile(r"<([^<>\s]+)>")


def message_ids(value: str | None) -> list[str]:
    """Message ids in a Message-ID/References/In-Reply-To value, without angle brackets."""
    if not value:
        return []
    found = _ID.findall(value)
    if not found:
        found = [word for word in value.split() if "@" in word]
    out: list[str] = []
    for item in found:
        item = item.strip("<>,;").strip()
        if item and item not in out:
            out.append(item)
    return out


def synthetic_message_id(raw: bytes) -> str:
    """A stable id for a message that has no Message-ID: a hash of its bytes."""
    return f"sha256.{hashlib.sha256(raw).hexdigest()[:40]}@omnilink.invalid"


def parse_date(value: str | None) -> datetime | None:
    """An aware UTC datetime from a Date header, or None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def safe_filename(name: str | None, content_type: str, index: int) -> str:
    """A file name safe to show and to save: no path, no control or reserved characters."""
    cleaned = ""
    if name:
        name = unicodedata.normalize("NFC", name)
        name = name.replace("\\", "/").rsplit("/", 1)[-1]
        cleaned = _UNSAFE.sub("_", name).strip(" .")
        if len(cleaned) > 150:
            stem, dot, ext = cleaned.rpartition(".")
            cleaned = stem[: 150 - len(ext) - 1] + dot + ext if dot and len(ext) <= 10 else cleaned[:150]
    if not cleaned:
        ext = mimetypes.guess_extension(content_type) or ".bin"
        cleaned = f"attachment-{index}{ext}"
    return cleaned
