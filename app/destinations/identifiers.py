"""Identifier normalisation, per platform, before hashing (DESIGN §8).

Each normaliser turns one raw value into the exact string a platform matches on, or raises
`InvalidValue` saying why it cannot; a row with such a value is `invalid`, never sent. A value
that already is a SHA-256 hex digest passes through (lower-cased), so audiences hashed
upstream still match. The published vectors in `docs/normalisation-vectors.json` pin every
rule; the tests check each one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import phonenumbers

from app.destinations.phone_e164 import e164

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_GOOGLE_MAIL = frozenset({"gmail.com", "googlemail.com"})
_NOT_LETTER = re.compile(r"[^\w]|[\d_]", re.UNICODE)


class InvalidValue(ValueError):
    """A value the platform could never match; the message says why (never the value)."""


class Normalizer(StrEnum):
    """How a destination field's values are normalised. The names are public (catalogue)."""

    email = "email"  #: trimmed, lower-cased
    google_email = "google_email"  #: email, and gmail.com local parts lose dots and +tags
    phone_e164 = "phone_e164"  #: E.164 with "+" (Google)
    phone_digits = "phone_digits"  #: E.164 digits, country code, no "+" (Meta)
    name = "name"  #: trimmed, lower-cased
    meta_name = "meta_name"  #: name, letters only (Meta: no punctuation, spaces or digits)
    country = "country"  #: ISO 3166-1 alpha-2, upper-case (Google, unhashed)
    meta_country = "meta_country"  #: ISO 3166-1 alpha-2, lower-case (Meta, hashed)
    postal_code = "postal_code"  #: trimmed, internal spaces kept (Google, unhashed)
    meta_zip = "meta_zip"  #: lower-case, no spaces; US codes cut to five digits (Meta)
    text = "text"  #: any value, as a trimmed string
    external_id = "external_id"  #: a non-empty identifier string, kept as it is


def is_sha256(value: str) -> bool:
    return bool(_HEX64.fullmatch(value))


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _text(value: Any) -> str:
    if value is None:
        raise InvalidValue("is empty")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidValue("is not text")
    text = unicodedata.normalize("NFC", str(value)).strip()
    if not text:
        raise InvalidValue("is empty")
    return text


def _email(value: Any) -> str:
    text = "".join(_text(value).split()).lower()
    if not _EMAIL.fullmatch(text):
        raise InvalidValue("is not an email address")
    return text


def _google_email(value: Any) -> str:
    text = _email(value)
    local, _, domain = text.rpartition("@")
    if domain in _GOOGLE_MAIL:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            raise InvalidValue("is not an email address")
    return f"{local}@{domain}"


def _phone(value: Any, region: str | None) -> str:
    text = _text(value)
    plus = text.startswith("+")
    shortcut = e164(text, None if plus else region)
    if shortcut is not None:
        return shortcut
    try:
        number = phonenumbers.parse(text, None if plus else region)
    except phonenumbers.NumberParseException:
        raise InvalidValue("is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("is not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _country(value: Any) -> str:
    text = _text(value).upper()
    if len(text) != 2 or not text.isascii() or not text.isalpha():
        raise InvalidValue("is not an ISO 3166-1 alpha-2 country code")
    return text


def _meta_name(value: Any) -> str:
    text = _NOT_LETTER.sub("", _text(value).lower())
    if not text:
        raise InvalidValue("has no letters")
    return text


def _meta_zip(value: Any, region: str | None) -> str:
    text = "".join(_text(value).lower().split()).replace("-", "")
    if region == "US" and len(text) > 5 and text[:5].isdigit():
        text = text[:5]
    if not text.isalnum():
        raise InvalidValue("is not a postal code")
    return text


_RULES: dict[Normalizer, Callable[[Any, str | None], str]] = {
    Normalizer.email: lambda value, _: _email(value),
    Normalizer.google_email: lambda value, _: _google_email(value),
    Normalizer.phone_e164: _phone,
    Normalizer.phone_digits: lambda value, region: _phone(value, region).lstrip("+"),
    Normalizer.name: lambda value, _: _text(value).lower(),
    Normalizer.meta_name: lambda value, _: _meta_name(value),
    Normalizer.country: lambda value, _: _country(value),
    Normalizer.meta_country: lambda value, _: _country(value).lower(),
    Normalizer.postal_code: lambda value, _: " ".join(_text(value).split()),
    Normalizer.meta_zip: _meta_zip,
    Normalizer.text: lambda value, _: _text(value),
    Normalizer.external_id: lambda value, _: _text(value),
}


def normalize(
    value: Any, how: Normalizer, *, hashed: bool = False, region: str | None = None
) -> str:
    """The value as the platform wants it; hashed with SHA-256 when `hashed`.

    A value that already is a 64-hex digest passes through (lower-cased) when `hashed`.
    `region` is the default country for phone numbers written without `+`.
    """
    if hashed and isinstance(value, str) and is_sha256(value.strip()):
        return value.strip().lower()
    normal = _RULES[how](value, region)
    return sha256(normal) if hashed else normal
