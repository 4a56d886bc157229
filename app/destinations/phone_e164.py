"""A shortcut to the E.164 form of phone numbers written in a plain shape: exactly what
`phonenumbers.parse` → `is_valid_number` → `format_number(E164)` gives, about ten times
faster, or None to say "ask phonenumbers".

The shape is an optional leading `+`, then ASCII digits with spaces, hyphens, dots and
parentheses between them ("+1 650 253 0001", "(650) 253-0001", "+39 06 6982 1234"). For that
shape phonenumbers' parse reduces to the digits (no letters, extension, RFC 3966 context or
second number can be present), and the rest of its work is replayed here from its own
metadata: the country calling code, the national prefix, the region a shared calling code's
number belongs to, and the number-type patterns that make it valid. The shortcut declines
(None) wherever phonenumbers would take a branch it does not replay (an international dialling
prefix, a national number starting with the country code, a national prefix with a transform
rule, a non-geographic calling code) and for every number that is not valid, so invalid input
always gets phonenumbers' own verdict. `tests/destinations/test_phone_e164.py` compares the two
on a generated corpus of every region's numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

_SHAPE = re.compile(r"\+?[0-9 ().\-]+")
#: phonenumbers' bounds on a national significant number and on a calling code.
_MIN_NSN, _MAX_NSN, _MAX_CALLING_CODE, _MAX_INPUT = 2, 17, 3, 250
_NON_GEOGRAPHIC = "001"


@dataclass(frozen=True, slots=True)
class _Desc:
    """A number description: `_is_number_matching_desc` (lengths, then the full pattern)."""

    lengths: tuple[int, ...]
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, desc: PhoneNumberDesc | None) -> _Desc:
        if desc is None or not desc.national_number_pattern:
            return cls((), None)
        return cls(tuple(desc.possible_length), re.compile(desc.national_number_pattern))

    def matches(self, nsn: str) -> bool:
        if self.pattern is None or (self.lengths and len(nsn) not in self.lengths):
            return False
        return self.pattern.fullmatch(nsn) is not None


@dataclass(frozen=True, slots=True)
class _Region:
    code: str
    country_code: int
    leading_digits: re.Pattern[str] | None
    #: `national_prefix_for_parsing` (None when absent); `transforms`: it has a transform rule.
    national_prefix: re.Pattern[str] | None
    transforms: bool
    international_prefix: re.Pattern[str] | None
    #: The general description's pattern without the length check (`_match_national_number`).
    general_pattern: re.Pattern[str] | None
    general: _Desc
    possible_lengths: tuple[int, ...]
    local_only_lengths: tuple[int, ...]
    #: Every type whose match makes `_number_type_helper` answer something other than UNKNOWN.
    kinds: tuple[_Desc, ...]

    def valid(self, nsn: str) -> bool:
        """`_number_type_helper(nsn, metadata) != UNKNOWN`."""
        if not self.general.matches(nsn):
            return False
        for kind in self.kinds:
            if kind.matches(nsn):
                return True
        return False

    def general_match(self, number: str) -> bool:
        return (
            self.general_pattern is not None and self.general_pattern.fullmatch(number) is not None
        )

    def national(self, number: str) -> str | None:
        """The national significant number parse keeps for `number` (national prefix stripped
        when phonenumbers strips it), or None where the shortcut declines."""
        if self.national_prefix is None:
            return number
        match = self.national_prefix.match(number)
        if match is None:
            return number
        if self.transforms:
            return None
        stripped = number[match.end() :]
        if self.general_match(number) and not self.general_match(stripped):
            return number
        return stripped if self._length_allows(len(stripped)) else number

    def _length_allows(self, length: int) -> bool:
        """`_test_number_length` answers IS_POSSIBLE or TOO_LONG (what parse accepts)."""
        if length in self.local_only_lengths:
            return False
        lengths = self.possible_lengths
        if lengths[0] == length:
            return True
        if lengths[0] > length:
            return False
        return lengths[-1] < length or length in lengths[1:]


_regions: dict[str, _Region | None] = {}


def _region(code: str) -> _Region | None:
    if code in _regions:
        return _regions[code]
    metadata = PhoneMetadata.metadata_for_region(code, None)
    region = None if metadata is None else _compile(code, metadata)
    _regions[code] = region
    return region


def _compile(code: str, metadata: PhoneMetadata) -> _Region | None:
    general = metadata.general_desc
    if general is None or not general.possible_length or metadata.country_code is None:
        return None
    kinds = [metadata.fixed_line]
    if not metadata.same_mobile_and_fixed_line_pattern:
        kinds.append(metadata.mobile)
    kinds += [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
    ]
    prefix = metadata.national_prefix_for_parsing
    return _Region(
        code=code,
        country_code=metadata.country_code,
        leading_digits=re.compile(metadata.leading_digits) if metadata.leading_digits else None,
        national_prefix=re.compile(prefix) if prefix else None,
        transforms=bool(prefix and metadata.national_prefix_transform_rule),
        international_prefix=(
            re.compile(metadata.international_prefix) if metadata.international_prefix else None
        ),
        general_pattern=(
            re.compile(general.national_number_pattern) if general.national_number_pattern else None
        ),
        general=_Desc.of(general),
        possible_lengths=tuple(general.possible_length),
        local_only_lengths=tuple(general.possible_length_local_only),
        kinds=tuple(desc for desc in map(_Desc.of, kinds) if desc.pattern is not None),
    )


@dataclass(frozen=True, slots=True)
class _CallingCode:
    code: int
    #: The regions sharing the code, in phonenumbers' order; None: metadata it has not got.
    regions: tuple[_Region | None, ...]

    def valid(self, nsn: str) -> bool:
        """`is_valid_number` (`region_code_for_number`, then `is_valid_number_for_region`)."""
        if len(self.regions) == 1:
            owner = self.regions[0]
        else:  # `_region_code_for_number_from_list`
            for region in self.regions:
                if region is None:
                    continue
                if region.leading_digits is None:
                    if region.valid(nsn):
                        return region.country_code == self.code
                elif region.leading_digits.match(nsn):
                    owner = region
                    break
            else:
                return False
        return owner is not None and owner.country_code == self.code and owner.valid(nsn)


_calling_codes: dict[int, _CallingCode | None] = {}
#: Calling codes by their digits, as `_extract_country_code` tries them (one to three digits).
_CODE_DIGITS = {str(code): code for code in COUNTRY_CODE_TO_REGION_CODE}


def _calling_code(code: int) -> _CallingCode | None:
    if code in _calling_codes:
        return _calling_codes[code]
    names = COUNTRY_CODE_TO_REGION_CODE.get(code) or ()
    regions = tuple(_region(name) for name in names)
    # A region with metadata the shortcut did not compile: decline the whole calling code.
    readable = names and all(
        region is not None or PhoneMetadata.metadata_for_region(name, None) is None
        for name, region in zip(names, regions, strict=True)
    )
    calling = _CallingCode(code, regions) if readable else None
    _calling_codes[code] = calling
    return calling


def e164(text: str, region: str | None) -> str | None:
    """`text`'s E.164 form when it is in the plain shape and valid (None: ask phonenumbers).
    `region` is the default region for numbers written without `+`, as phonenumbers takes it."""
    if len(text) > _MAX_INPUT or _SHAPE.fullmatch(text) is None:
        return None
    digits = (
        text.replace(" ", "")
        .replace("-", "")
        .replace("(", "")
        .replace(")", "")
        .replace(".", "")
        .replace("+", "")
    )
    if len(digits) < 3:
        return None
    if text[0] == "+":
        if digits[0] == "0":
            return None
        for size in range(1, _MAX_CALLING_CODE + 1):
            country_code = _CODE_DIGITS.get(digits[:size], 0)
            if country_code:
                break
        else:
            return None
        code = COUNTRY_CODE_TO_REGION_CODE[country_code][0]
        home = None if code == _NON_GEOGRAPHIC else _region(code)
        number = digits[size:]
    else:
        if region is None or region not in SUPPORTED_REGIONS:
            return None
        home = _region(region)
        if home is None:
            return None
        idd = home.international_prefix
        if (idd is not None and idd.match(digits)) or digits.startswith(str(home.country_code)):
            return None
        country_code = home.country_code
        number = digits
    if home is None or len(number) < _MIN_NSN:
        return None
    nsn = home.national(number)
    if nsn is None or not _MIN_NSN <= len(nsn) <= _MAX_NSN:
        return None
    calling = _calling_code(country_code)
    if calling is None or not calling.valid(nsn):
        return None
    return f"+{country_code}{nsn}"
