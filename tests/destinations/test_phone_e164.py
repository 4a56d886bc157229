"""The phone shortcut (`app/destinations/phone_e164.py`) never answers differently from
phonenumbers: on a generated corpus of every region's numbers (valid and not, too short and too
long, national and international, leading zeros, shared calling codes, NANP) and on the
published vectors, each of its answers equals parse → is_valid_number → E.164, and it answers
for the plain shapes it is there for."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from app.destinations.identifiers import InvalidValue, Normalizer, normalize
from app.destinations.phone_e164 import e164
from tests.destinations.contract.people import person

VECTORS = json.loads(
    (Path(__file__).parents[2] / "docs" / "normalisation-vectors.json").read_text("utf-8")
)["vectors"]
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = [
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
]
SEPARATORS = [" ", "-", ".", "  ", " - "]
#: Calling codes shared by several regions (the shortcut must pick the same region).
SHARED = [1, 7, 39, 44, 47, 61, 212, 262, 290, 358, 590, 599]


def phonenumbers_e164(text: str, region: str | None) -> str | None:
    """The slow path of `identifiers._phone`: the E.164 form, or None when invalid."""
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def mutations(digits: str, rng: random.Random) -> Iterator[str]:
    """The digits, and neighbours of them: other last digits, one or two digits fewer or more,
    a leading zero, zeros inside."""
    yield digits
    for _ in range(3):
        cut = rng.randint(1, min(4, len(digits)))
        yield digits[:-cut] + "".join(rng.choice("0123456789") for _ in range(cut))
    yield digits[:-1]
    yield digits[:-2]
    yield digits + rng.choice("0123456789")
    yield digits + "".join(rng.choice("0123456789") for _ in range(2))
    yield "0" + digits
    yield "00" + digits
    if len(digits) > 3:
        yield digits[:2] + "0" + digits[3:]


def written(digits: str, rng: random.Random) -> Iterator[str]:
    """Ways people write the same digits: bare, grouped by separators, an area code in
    parentheses, stray spaces and trailing punctuation."""
    yield digits
    separator = rng.choice(SEPARATORS)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    yield separator.join(groups)
    if len(digits) > 4:
        yield f"({digits[:3]}) {digits[3:]}"
    yield f" {digits[:2]} {digits[2:]}."


def corpus() -> Iterator[tuple[str, str | None]]:
    rng = random.Random(20240606)
    for region in REGIONS:
        others = [region, "US", rng.choice(REGIONS)]
        examples = [phonenumbers.example_number_for_type(region, kind) for kind in TYPES]
        examples.append(phonenumbers.invalid_example_number(region))
        for example in examples:
            if example is None:
                continue
            international = phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)
            national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
            yield international, None
            yield national, region
            yield national, rng.choice(REGIONS)
            code = str(example.country_code)
            nsn = phonenumbers.national_significant_number(example)
            for variant in mutations(nsn, rng):
                for text in written(variant, rng):
                    yield f"+{code}{text}", None
                    yield f"+{code} {text}", None
                    yield text, rng.choice(others)
                yield f"{code}{variant}", region
                yield f"+{code}0{variant}", None
    for _ in range(4000):  # random digits, international and national
        length = rng.randint(1, 19)
        digits = "".join(rng.choice("0123456789") for _ in range(length))
        yield f"+{digits}", None
        yield digits, rng.choice([*REGIONS, None])
    for _ in range(4000):  # NANP: every shape of a ten-digit number, and the trunk "1"
        area = rng.choice(["2", "3", "4", "5", "6", "7", "8", "9", "0", "1"]) + str(
            rng.randint(0, 99)
        ).zfill(2)
        line = str(rng.randint(0, 9_999_999)).zfill(7)
        nanp = area + line
        region = rng.choice(["US", "CA", "PR", "JM", "AG", "BS", "GU"])
        yield f"+1{nanp}", None
        yield f"+1 ({area}) {line[:3]}-{line[3:]}", None
        yield f"({area}) {line[:3]}-{line[3:]}", region
        yield f"1 {area} {line}", region
        yield f"011 1 {nanp}", region
    for _ in range(2000):  # shared calling codes and Italian leading zeros
        calling = rng.choice([*SHARED, 39, 39, 39])
        zeros = "0" * rng.choice([0, 1, 1, 2])
        rest = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 11)))
        yield f"+{calling} {zeros}{rest}", None
        yield f"{zeros}{rest}", rng.choice(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[calling])
    for i in range(1, 4001, 7):  # the benchmark's people
        phone = person(i).phone
        assert phone is not None
        yield phone, "US"
    yield "+1 650 253 0001" + " " * 250, None  # over phonenumbers' input length


def test_the_shortcut_never_differs_from_phonenumbers() -> None:
    answered = 0
    cases = 0
    differences = []
    for text, region in corpus():
        cases += 1
        fast = e164(text, region)
        if fast is None:
            continue
        answered += 1
        slow = phonenumbers_e164(text, region)
        if fast != slow:
            differences.append((text, region, fast, slow))
    assert differences == []
    assert cases > 100_000
    # It is a shortcut worth having: it answers for a large share of the corpus.
    assert answered > cases // 5


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+1 650 253 0001", None, "+16502530001"),
        ("(650) 253-0001", "US", "+16502530001"),
        ("650.253.0001", "US", "+16502530001"),
        ("+1 (123) 456-7890", None, None),  # no area code starts with 1: invalid
        ("(123) 456-7890", "US", None),
        ("(416) 234-5678", "CA", "+14162345678"),
        ("(268) 460-1234", "US", "+12684601234"),  # Antigua, found among +1's regions
        ("+44 20 7031 3000", None, "+442070313000"),
        ("+44 020 7031 3000", None, "+442070313000"),  # the national prefix stripped
        ("020 7031 3000", "GB", "+442070313000"),
        ("+39 06 6982 1234", None, "+390669821234"),  # the Italian leading zero kept
        ("+7 912 345-67-89", None, "+79123456789"),
    ],
)
def test_plain_shapes_take_the_shortcut(
    text: str, region: str | None, expected: str | None
) -> None:
    """Valid ones are answered; an invalid one is left to phonenumbers, which refuses it."""
    assert e164(text, region) == expected
    assert phonenumbers_e164(text, region) == expected


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("1-800-FLOWERS", "US"),  # letters
        ("+1 650 253 0001 ext. 12", None),  # an extension
        ("tel:+1-650-253-0001", None),  # RFC 3966
        ("011 44 20 7031 3000", "US"),  # an international dialling prefix
        ("1 650 253 0001", "US"),  # the trunk prefix, or the country code written bare
        ("+800 1234 5678", None),  # a non-geographic calling code
        ("\uff16\uff15\uff10 253 0001", "US"),  # digits outside ASCII (full-width)
        ("(650) 253-0001", "us"),  # a region phonenumbers does not know
        ("(650) 253-0001", None),  # no region, no "+"
        ("12", "US"),
    ],
)
def test_other_shapes_go_to_phonenumbers(text: str, region: str | None) -> None:
    assert e164(text, region) is None


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v["normalizer"] in ("phone_e164", "phone_digits")],
    ids=lambda v: repr(v["input"]),
)
def test_published_phone_vectors_agree(vector: dict[str, object]) -> None:
    text = str(vector["input"]).strip()
    region = vector.get("region")
    assert region is None or isinstance(region, str)
    fast = e164(text, region)
    assert fast is None or fast == phonenumbers_e164(text, region)
    if vector.get("invalid"):
        with pytest.raises(InvalidValue):
            normalize(vector["input"], Normalizer(str(vector["normalizer"])), region=region)
