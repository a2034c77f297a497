"""base_subject, subject_key and reply_subject."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnilink_email import base_subject, reply_subject, subject_key
from omnilink_email._subject import FORWARD_PREFIXES, REPLY_PREFIXES


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Order 1234", "Order 1234"),
        ("RE: re: Re: Order 1234", "Order 1234"),
        ("Fwd: FW: Order 1234", "Order 1234"),
        ("AW: WG: Bestellung", "Bestellung"),
        ("SV: VS: Ordre", "Ordre"),
        ("Antw: Doorst: Bestelling", "Bestelling"),
        ("R: I: Ordine", "Ordine"),
        ("RV: RES: ENC: Pedido", "Pedido"),
        ("TR : Commande", "Commande"),
        ("Odp: PD: Zamówienie", "Zamówienie"),
        ("YNT: İLT: Sipariş", "Sipariş"),
        ("ΑΠ: ΣΧΕΤ: ΠΡΘ: Παραγγελία", "Παραγγελία"),
        ("תגובה: הועבר: הזמנה", "הזמנה"),
        ("Vá: Rendelés", "Rendelés"),
        ("BLS: TRS: Pesanan", "Pesanan"),
        ("НА: Отв: Пересл: Заказ", "Заказ"),
        ("回复：答复: 转发：订单", "订单"),
        ("回覆：轉寄：訂單", "訂單"),
        ("返信：転送: 注文", "注文"),
        ("Re[2]: Re(3): Order", "Order"),
        ("Re [2] : Order", "Order"),
        ("[support] Re: [support] Order", "Order"),
        ("[URGENT]", "[URGENT]"),
        ("Order (fwd)", "Order"),
        ("[Fwd: Order]", "Order"),
        ("  Re:   Order   1234  ", "Order 1234"),
        ("Recipe for dinner", "Recipe for dinner"),
        ("Reply needed", "Reply needed"),
        ("", ""),
    ],
)
def test_base_subject_strips_prefixes_in_many_languages(subject: str, expected: str) -> None:
    assert base_subject(subject) == expected


def test_every_listed_prefix_is_stripped_case_insensitively() -> None:
    for prefix in REPLY_PREFIXES + FORWARD_PREFIXES:
        assert base_subject(f"{prefix}: Hello") == "Hello", prefix
        assert base_subject(f"{prefix.lower()}： Hello") == "Hello", prefix


def test_subject_key_folds_case_and_is_none_when_empty() -> None:
    assert subject_key("RE: Straße") == subject_key("Strasse".upper()) == "strasse"
    assert subject_key("Re:") is None
    assert subject_key(None) is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Order", "Re: Order"),
        ("Re: Order", "Re: Order"),
        ("RE: Re: AW: Order", "Re: Order"),
        ("Fwd: Order", "Re: Fwd: Order"),
        (None, "Re:"),
    ],
)
def test_reply_subject_has_exactly_one_re(subject: str | None, expected: str) -> None:
    assert reply_subject(subject) == expected


@given(st.text(max_size=60))
def test_base_subject_is_idempotent(subject: str) -> None:
    once = base_subject(subject)
    assert base_subject(once) == once


@given(st.text(max_size=60))
def test_reply_subject_never_doubles_re(subject: str) -> None:
    once = reply_subject(subject)
    assert reply_subject(once) == once
    assert not once.lower().startswith("re: re:")
