"""Signed, expiring page links: valid, expired, altered, foreign and malformed tokens."""

from __future__ import annotations

import datetime

import pytest

from reports.errors import ExpiredPageTokenError, InvalidPageTokenError, InvalidReportInputError
from reports.links import PageKind, sign_page_token, verify_page_token

SECRET = b"k" * 32
NOW = datetime.datetime(2026, 11, 26, 9, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(days=30)


class TestSignAndVerify:
    def test_round_trip(self) -> None:
        token = sign_page_token(SECRET, "report-1", PageKind.PATIENT, LATER)
        link = verify_page_token(SECRET, token, now=NOW)
        assert (link.report_id, link.kind, link.expires_at) == ("report-1", PageKind.PATIENT, LATER)

    def test_token_is_url_safe(self) -> None:
        token = sign_page_token(SECRET, "a_B-9", PageKind.CLINICIAN, LATER)
        assert set(token) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
        )

    def test_expired(self) -> None:
        token = sign_page_token(SECRET, "report-1", PageKind.PATIENT, NOW)
        with pytest.raises(ExpiredPageTokenError):
            verify_page_token(SECRET, token, now=NOW)

    def test_still_valid_one_second_before_expiry(self) -> None:
        token = sign_page_token(SECRET, "report-1", PageKind.PATIENT, LATER)
        assert verify_page_token(SECRET, token, now=LATER - datetime.timedelta(seconds=1))

    @pytest.mark.parametrize("position", [0, 5, 20, -1])
    def test_any_altered_character_is_rejected(self, position: int) -> None:
        token = sign_page_token(SECRET, "report-1", PageKind.PATIENT, LATER)
        swapped = "A" if token[position] != "A" else "B"
        altered = (
            token[:position] + swapped + token[position + 1 :]
            if position != -1
            else (token[:-1] + swapped)
        )
        with pytest.raises(InvalidPageTokenError):
            verify_page_token(SECRET, altered, now=NOW)

    def test_extended_expiry_without_the_secret_is_rejected(self) -> None:
        import base64

        token = sign_page_token(SECRET, "report-1", PageKind.PATIENT, NOW)
        forged_payload = (
            base64.urlsafe_b64encode(f"patient.report-1.{int(LATER.timestamp())}".encode())
            .rstrip(b"=")
            .decode()
        )
        forged = forged_payload + "." + token.split(".")[1]
        with pytest.raises(InvalidPageTokenError):
            verify_page_token(SECRET, forged, now=NOW)

    def test_other_secret_is_rejected(self) -> None:
        token = sign_page_token(SECRET, "report-1", PageKind.PATIENT, LATER)
        with pytest.raises(InvalidPageTokenError):
            verify_page_token(b"x" * 32, token, now=NOW)

    def test_altered_expired_token_reads_as_invalid_not_expired(self) -> None:
        token = sign_page_token(SECRET, "report-1", PageKind.PATIENT, NOW)
        with pytest.raises(InvalidPageTokenError):
            verify_page_token(b"x" * 32, token, now=LATER)

    @pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!!.###", "a" * 600, "Zm9v.YmFy"])
    def test_malformed(self, token: str) -> None:
        with pytest.raises(InvalidPageTokenError):
            verify_page_token(SECRET, token, now=NOW)


class TestArguments:
    def test_short_secret(self) -> None:
        with pytest.raises(InvalidReportInputError, match="at least 32 bytes"):
            sign_page_token(b"short", "r", PageKind.PATIENT, LATER)

    @pytest.mark.parametrize("report_id", ["", "../etc", "a b", "a.b", "x" * 65])
    def test_report_id(self, report_id: str) -> None:
        with pytest.raises(InvalidReportInputError, match="report_id"):
            sign_page_token(SECRET, report_id, PageKind.PATIENT, LATER)

    def test_naive_expiry(self) -> None:
        with pytest.raises(InvalidReportInputError, match="timezone-aware"):
            sign_page_token(SECRET, "r", PageKind.PATIENT, datetime.datetime(2030, 1, 1))


class TestCanonicalEncoding:
    def test_every_spelling_of_the_last_character_but_one_is_rejected(self) -> None:
        token = sign_page_token(SECRET, "report-1", PageKind.PATIENT, LATER)
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        accepted = []
        for char in alphabet:
            candidate = token[:-1] + char
            try:
                verify_page_token(SECRET, candidate, now=NOW)
            except InvalidPageTokenError:
                continue
            accepted.append(char)
        assert accepted == [token[-1]]
