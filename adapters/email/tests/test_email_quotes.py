"""strip_quoted on replies written the way real clients write them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnilink_email import strip_quoted

GMAIL = """Thanks, that fixed it!

On Mon, Jan 8, 2024 at 10:14 AM Acme Support <support@acme.test> wrote:

> Could you try restarting the router?
>
> Best, Sam
"""

GMAIL_WRAPPED = """Yes please, go ahead.

On Mon, Jan 8, 2024 at 10:14 AM Acme Support Team <
support@acme.test> wrote:
> Shall we replace it?
"""

OUTLOOK = """Hi Sam,

The parcel still has not arrived.

Regards,
Jo

________________________________
From: Acme Support <support@acme.test>
Sent: Monday, January 8, 2024 10:14 AM
To: Jo <jo@example.com>
Subject: Re: Where is my parcel?

It left our warehouse yesterday.
"""

OUTLOOK_GERMAN = """Vielen Dank, das hat geholfen.

Von: Acme Support <support@acme.test>
Gesendet: Montag, 8. Januar 2024 10:14
An: Jo <jo@example.com>
Betreff: AW: Rechnung

Anbei die Rechnung.
"""

OUTLOOK_FRENCH_BOLD = """Merci !

*De :* Acme Support <support@acme.test>
*Envoyé :* lundi 8 janvier 2024 10:14
*À :* Jo <jo@example.com>
*Objet :* Facture

Voici la facture.
"""

ORIGINAL_MESSAGE = """Please cancel my order.

-----Original Message-----
From: Acme <orders@acme.test>
Subject: Your order

Your order has shipped.
"""

APPLE_MAIL = """Sounds good to me.

Sent from my iPhone

> On 8 Jan 2024, at 10:14, Acme Support <support@acme.test> wrote:
>
> Shall we book Tuesday?
"""

THUNDERBIRD_BOTTOM = """On 08/01/2024 10:14, Acme Support wrote:
> Which model do you have?

The X200, bought last spring.

--
Jo Bloggs
Head of Things
"""

INLINE = """Acme Support wrote:
> What is your order number?
It is 1234.
> And your postcode?
AB1 2CD.
"""

FORWARD = """FYI, see below.

---------- Forwarded message ---------
From: Shop <shop@example.net>
Date: Mon, Jan 8, 2024
Subject: Invoice
To: <jo@example.com>

Your invoice is attached.
"""

MOBILE_SIGNATURE = """ok thanks
Get Outlook for Android
"""

LANGUAGES = {
    "fr": "Le lun. 8 janv. 2024 à 10:14, Acme <support@acme.test> a écrit :",
    "es": "El lun, 8 ene 2024 a las 10:14, Acme (<support@acme.test>) escribió:",
    "it": "Il giorno lun 8 gen 2024 alle ore 10:14 Acme <support@acme.test> ha scritto:",
    "de": "Am Mo., 8. Jan. 2024 um 10:14 Uhr schrieb Acme <support@acme.test>:",
    "nl": "Op ma 8 jan. 2024 om 10:14 schreef Acme <support@acme.test>:",
    "pl": "W dniu pon., 8 sty 2024 o 10:14 Acme <support@acme.test> napisał(a):",
    "sv": "Den mån 8 jan. 2024 kl 10:14 skrev Acme <support@acme.test>:",
    "pt": "Em seg., 8 de jan. de 2024 às 10:14, Acme <support@acme.test> escreveu:",
    "ru": "8 января 2024 г., в 10:14, Acme <support@acme.test> написал(а):",
    "zh": "在 2024年1月8日 10:14，Acme <support@acme.test> 写道：",
    "ja": "2024年1月8日(月) 10:14 Acme <support@acme.test>のメッセージ:",
    "tr": "8 Oca 2024 Pzt, 10:14 tarihinde Acme <support@acme.test> şunu yazdı:",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GMAIL, "Thanks, that fixed it!"),
        (GMAIL_WRAPPED, "Yes please, go ahead."),
        (OUTLOOK, "Hi Sam,\n\nThe parcel still has not arrived.\n\nRegards,\nJo"),
        (OUTLOOK_GERMAN, "Vielen Dank, das hat geholfen."),
        (OUTLOOK_FRENCH_BOLD, "Merci !"),
        (ORIGINAL_MESSAGE, "Please cancel my order."),
        (APPLE_MAIL, "Sounds good to me."),
        (THUNDERBIRD_BOTTOM, "The X200, bought last spring."),
        (INLINE, "It is 1234.\nAB1 2CD."),
        (FORWARD, "FYI, see below."),
        (MOBILE_SIGNATURE, "ok thanks"),
        ("Just a message with no quote.\nTwo lines.", "Just a message with no quote.\nTwo lines."),
    ],
    ids=[
        "gmail",
        "gmail-wrapped-attribution",
        "outlook",
        "outlook-de",
        "outlook-fr-bold",
        "original-message",
        "apple-mail-iphone",
        "thunderbird-bottom-post",
        "inline",
        "forward",
        "mobile-signature",
        "no-quote",
    ],
)
def test_strip_quoted_keeps_only_the_new_text(text: str, expected: str) -> None:
    assert strip_quoted(text) == expected


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_strip_quoted_recognises_attribution_lines_in_many_languages(language: str) -> None:
    text = f"New answer here.\n\n{LANGUAGES[language]}\n> the old message\n> more\n"
    assert strip_quoted(text) == "New answer here."


def test_strip_quoted_handles_crlf_line_endings() -> None:
    assert strip_quoted(GMAIL.replace("\n", "\r\n")) == "Thanks, that fixed it!"


def test_strip_quoted_of_a_pure_quote_is_empty() -> None:
    assert strip_quoted("> only\n> quoted\n") == ""


@given(st.text(max_size=300))
def test_strip_quoted_never_crashes_and_never_grows(text: str) -> None:
    stripped = strip_quoted(text)
    assert len(stripped) <= len(text)
