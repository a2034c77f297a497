"""The new part of a reply: quoted history, attribution lines and signatures removed.

For display only: the stored message keeps the full text.
"""

from __future__ import annotations

import re

_I = re.IGNORECASE

# "On <date>, <name> wrote:" and its translations. Each must end the (possibly wrapped) line.
_ATTRIBUTION = re.compile(
    r"^\s*(?:"
    r"on\b.{1,300}\bwrote\s*:"  # English (Gmail, Apple Mail, Thunderbird)
    r"|le\b.{1,300}\ba\s+écrit\s*:"  # French
    r"|el\b.{1,300}\bescribió\s*:"  # Spanish
    r"|il\b.{1,300}\bha\s+scritto\s*:"  # Italian
    r"|am\b.{1,300}\bschrieb\b.{0,300}:"  # German
    r"|op\b.{1,300}\bschreef\b.{0,300}:"  # Dutch
    r"|em\b.{1,300}\bescreveu\s*:"  # Portuguese
    r"|w\s+dniu\b.{1,300}\bnapisał(?:\(a\)|a)?\b.{0,300}:"  # Polish
    r"|den\b.{1,300}\bskrev\b.{0,300}:"  # Danish, Norwegian, Swedish
    r"|.{1,300}\bнаписал(?:\(а\)|а)?\s*:"  # Russian
    r"|.{1,300}\byazdı\s*:"  # Turkish
    r"|在.{1,300}(?:写道|寫道)\s*[:：]"  # Chinese
    r"|.{1,300}(?:のメッセージ|のメール|書きました)\s*[:：]"  # Japanese
    r")\s*$",
    _I,
)
# "<name> wrote:" without a date: only an attribution when a quote follows it.
_LOOSE_ATTRIBUTION = re.compile(
    r"^\s*.{1,300}\b(?:wrote|écrit|escribió|scritto|schrieb|schreef|escreveu|skrev|napisał)\s*:\s*$", _I
)

_FROM_KEYS = r"from|von|de|da|van|od|från|fra|от|差出人|发件人|寄件者|kimden"
_OTHER_KEYS = (
    r"sent|date|to|cc|subject|gesendet|datum|an|betreff|envoyé|date|à|objet|enviado|enviada|fecha|"
    r"para|asunto|assunto|data|inviato|a|oggetto|verzonden|aan|onderwerp|wysłano|do|temat|skickat|"
    r"till|ämne|sendt|til|emne|отправлено|дата|кому|тема|送信日時|宛先|件名|发送时间|收件人|主题|"
    r"傳送時間|收件者|主旨|gönderildi|kime|konu"
)
_HEADER_FROM = re.compile(rf"^\s*\**\s*(?:{_FROM_KEYS})\s*\**\s*[:：]", _I)
_HEADER_OTHER = re.compile(rf"^\s*\**\s*(?:{_OTHER_KEYS})\s*\**\s*[:：]", _I)

_SEPARATOR = re.compile(
    r"^\s*(?:"
    r"-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|originalmeddelande|original meddelelse|"
    r"opprinnelig melding|wiadomość oryginalna|исходное сообщение|mensagem original|"
    r"forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|"
    r"messaggio inoltrato|doorgestuurd bericht|vidarebefordrat meddelande|"
    r"пересланное сообщение|mensagem encaminhada|原始邮件|转发的邮件|元のメッセージ)\s*-{2,}"
    r"|begin forwarded message\s*:"
    r"|début du message réenvoyé\s*:"
    r"|anfang der weitergeleiteten nachricht\s*:"
    r"|inicio del mensaje reenviado\s*:"
    r"|_{20,}"
    r")\s*$",
    _I,
)
_SIGNATURE = re.compile(
    r"^\s*(?:--|-- |"
    r"sent from my\b.*|get outlook for\b.*|sent from outlook\b.*|sent from mail for\b.*|"
    r"von meinem\b.*\bgesendet|envoyé de mon\b.*|enviado desde mi\b.*|enviado do meu\b.*|"
    r"inviato da\b.*|verzonden (?:vanaf|met) (?:mijn|m'n)\b.*|wysłane z\b.*|отправлено с\b.*|"
    r"skickat från min\b.*|sendt fra min\b.*|发自我的.*|iphoneから送信|.*から送信)\s*$",
    _I,
)
_QUOTED = re.compile(r"^\s*>")


def _is_attribution(lines: list[str], i: int) -> int:
    """Lines taken by an attribution starting at ``i`` (0: none). Gmail wraps them in two."""
    line = lines[i]
    if not line.strip() or _QUOTED.match(line):
        return 0
    if len(line) <= 400 and _ATTRIBUTION.match(line):
        return 1
    if i + 1 < len(lines) and lines[i + 1].strip() and not _QUOTED.match(lines[i + 1]):
        joined = f"{line.rstrip()} {lines[i + 1].strip()}"
        if len(joined) <= 400 and _ATTRIBUTION.match(joined) and not line.rstrip().endswith(":"):
            return 2
    if len(line) <= 400 and _LOOSE_ATTRIBUTION.match(line) and _quote_follows(lines, i + 1):
        return 1
    return 0


def _quote_follows(lines: list[str], i: int) -> bool:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i < len(lines) and bool(_QUOTED.match(lines[i]))


def _is_header_block(lines: list[str], i: int) -> bool:
    if not _HEADER_FROM.match(lines[i]):
        return False
    others = 0
    seen = 0
    j = i + 1
    while j < len(lines) and seen < 6:
        if lines[j].strip():
            seen += 1
            if _HEADER_OTHER.match(lines[j]):
                others += 1
        j += 1
    return others >= 2


def _history_start(lines: list[str]) -> int | None:
    """Index of the first line of quoted history below the new text, if any."""
    for i, line in enumerate(lines):
        if _SEPARATOR.match(line) or _is_header_block(lines, i) or _is_attribution(lines, i):
            return i
    return None


def _has_text(lines: list[str]) -> bool:
    return any(line.strip() and not _QUOTED.match(line) for line in lines)


def _drop_quotes(lines: list[str]) -> list[str]:
    """Remove ``>`` lines and the attribution lines that introduce them (inline replies)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        taken = _is_attribution(lines, i)
        if taken and _quote_follows(lines, i + taken):
            i += taken
            continue
        if not _QUOTED.match(lines[i]):
            out.append(lines[i])
        i += 1
    return out


def _cut_signature(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if i > 0 and _SIGNATURE.match(line):
            return lines[:i]
    return lines


def _tidy(lines: list[str]) -> str:
    out: list[str] = []
    for line in (line.rstrip() for line in lines):
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def strip_quoted(text: str) -> str:
    """The new part of a reply, for display.

    Handles top-posted replies (the history below an attribution line, an Outlook header
    block, an "Original Message" or forwarded-message separator), bottom-posted and inline
    ``>`` quoting, and signatures (a ``--`` line, "Sent from my …" in many languages).
    Returns ``""`` when the message has nothing but quoted history.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _history_start(lines)
    if start is not None and _has_text(lines[:start]):
        lines = lines[:start]
    # Otherwise the history comes first: a bottom-posted or inline reply, or a bare forward
    # whose forwarded text is the content.
    lines = _drop_quotes(lines)
    lines = _cut_signature(lines)
    return _tidy(lines)
