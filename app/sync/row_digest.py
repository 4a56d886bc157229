"""Row digests: knowing a member unchanged from the line of text its row came in, without
decoding, mapping or fingerprinting it.

A held member keeps, beside the fingerprint of what it was sent with (DESIGN §5.1), the digest
of the source line that payload was built from. The digest is seeded by the sync's recipe:
the source's layout (the statement and its column types), the field mapping, the
destination's type and normalisation settings and the version of the code that turns rows
into payloads. The same line under the same recipe is the same payload, so a member whose
digest is the one held is unchanged, and only the others are decoded and fingerprinted; a
different recipe gives different digests, and every member is fingerprinted once more (the
plan is the same either way, only slower).

The digest is XXH3's 128 bits (`xxhash`): about 0.07 µs a line, where SHA-256 or BLAKE2 cost
0.6 to 0.7 µs through `hashlib` (a call and an object each), more than decoding the row. It is
not a cryptographic hash: whoever writes the source's rows decides the audience anyway, and
an accidental collision between a member's old and new line has odds of 2⁻¹²⁸.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

import phonenumbers
import xxhash

#: Bumped whenever the code that turns a source row into a payload changes what it makes.
RECIPE_VERSION = 1


def recipe(
    field_mapping: Sequence[Mapping[str, str]], destination: str, settings: Mapping[str, Any]
) -> str:
    """The sync's part of the recipe: what its payloads are made of, besides the source."""
    return json.dumps(
        {
            "version": RECIPE_VERSION,
            "phonenumbers": phonenumbers.__version__,  # its metadata decides phone numbers
            "mapping": [dict(item) for item in field_mapping],
            "destination": destination,
            "settings": dict(settings),
        },
        sort_keys=True,
        default=str,
    )


class RowDigests:
    """The digest of each line, under a sync's recipe and each source layout it meets."""

    def __init__(self, recipe: str) -> None:
        self.recipe = recipe
        self._seeds: dict[str, int] = {}

    def __call__(self, layout: str, lines: Sequence[bytes]) -> list[bytes]:
        seed = self._seeds.get(layout)
        if seed is None:
            whole = f"{self.recipe}\n{layout}".encode()
            seed = int.from_bytes(hashlib.blake2b(whole, digest_size=8).digest(), "big")
            self._seeds[layout] = seed
        return list(map(_digest, lines, repeat(seed)))


_digest: Callable[[bytes, int], bytes] = xxhash.xxh3_128_digest
