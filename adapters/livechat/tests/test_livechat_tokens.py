"""Visitor tokens cannot be forged, expire, and bind sessions and uploads to one visitor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnilink_livechat._tokens import (
    TokenError,
    identity_hash,
    issue_session_token,
    issue_upload_token,
    issue_visitor_token,
    new_visitor_id,
    verify_identity,
    verify_session_token,
    verify_upload_token,
    verify_visitor_token,
)

SECRET = "s3cret-s3cret-s3cret"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_visitor_token_round_trips_to_its_visitor() -> None:
    visitor = new_visitor_id()
    token = issue_visitor_token(SECRET, visitor, NOW)
    claims = verify_visitor_token(SECRET, token, now=NOW + timedelta(days=1))
    assert claims.visitor_id == visitor
    assert claims.issued_at == NOW


def test_visitor_token_signed_with_another_secret_is_refused() -> None:
    token = issue_visitor_token("another-secret-entirely", new_visitor_id(), NOW)
    with pytest.raises(TokenError, match="signature"):
        verify_visitor_token(SECRET, token, now=NOW)


def test_visitor_token_with_swapped_visitor_id_is_refused() -> None:
    token = issue_visitor_token(SECRET, new_visitor_id(), NOW)
    version, _, stamp, signature = token.split(".")
    forged = ".".join((version, new_visitor_id(), stamp, signature))
    with pytest.raises(TokenError):
        verify_visitor_token(SECRET, forged, now=NOW)


def test_visitor_token_with_changed_issue_time_is_refused() -> None:
    token = issue_visitor_token(SECRET, new_visitor_id(), NOW)
    version, visitor, stamp, signature = token.split(".")
    forged = ".".join((version, visitor, str(int(stamp) + 1), signature))
    with pytest.raises(TokenError):
        verify_visitor_token(SECRET, forged, now=NOW)


def test_expired_visitor_token_is_refused() -> None:
    token = issue_visitor_token(SECRET, new_visitor_id(), NOW)
    with pytest.raises(TokenError, match="expired"):
        verify_visitor_token(SECRET, token, now=NOW + timedelta(days=2), max_age=timedelta(days=1))


def test_visitor_token_from_the_future_is_refused() -> None:
    token = issue_visitor_token(SECRET, new_visitor_id(), NOW + timedelta(hours=1))
    with pytest.raises(TokenError, match="future"):
        verify_visitor_token(SECRET, token, now=NOW)


@given(st.text(max_size=80))
def test_arbitrary_strings_are_never_valid_visitor_tokens(junk: str) -> None:
    with pytest.raises(TokenError):
        verify_visitor_token(SECRET, junk, now=NOW)


def test_session_token_is_bound_to_its_visitor() -> None:
    alice, mallory = new_visitor_id(), new_visitor_id()
    token = issue_session_token(SECRET, alice, "ses_abcdefgh12345678")
    assert verify_session_token(SECRET, token, visitor_id=alice) == "ses_abcdefgh12345678"
    with pytest.raises(TokenError, match="not issued to this visitor"):
        verify_session_token(SECRET, token, visitor_id=mallory)


def test_upload_token_is_not_accepted_as_a_session_token() -> None:
    visitor = new_visitor_id()
    upload = issue_upload_token(SECRET, visitor, "upl_abcdefgh12345678")
    assert verify_upload_token(SECRET, upload, visitor_id=visitor) == "upl_abcdefgh12345678"
    with pytest.raises(TokenError):
        verify_session_token(SECRET, upload, visitor_id=visitor)


def test_verified_identity_accepts_the_sites_hmac_only() -> None:
    digest = identity_hash("identity-secret", "ann@example.com")
    assert verify_identity("identity-secret", "ann@example.com", digest)
    assert verify_identity("identity-secret", "ann@example.com", digest.upper())
    assert not verify_identity("identity-secret", "eve@example.com", digest)
    assert not verify_identity("other-secret", "ann@example.com", digest)
