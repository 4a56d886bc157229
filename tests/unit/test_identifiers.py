"""The published normalisation vectors (docs/normalisation-vectors.json) hold, every one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.destinations.identifiers import InvalidValue, Normalizer, normalize

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "docs" / "normalisation-vectors.json").read_text("utf-8")
)["vectors"]


@pytest.mark.parametrize(
    "vector", VECTORS, ids=[f"{v['normalizer']}:{v['input']!r}" for v in VECTORS]
)
def test_vector(vector: dict[str, Any]) -> None:
    how = Normalizer(vector["normalizer"])
    call = {"hashed": vector["hashed"], "region": vector.get("region")}
    if vector.get("invalid"):
        with pytest.raises(InvalidValue) as refused:
            normalize(vector["input"], how, **call)
        if vector["input"]:
            assert vector["input"] not in str(refused.value)  # reasons never echo the value
    else:
        assert normalize(vector["input"], how, **call) == vector["output"]


def test_every_normalizer_has_vectors() -> None:
    assert {Normalizer(v["normalizer"]) for v in VECTORS} == set(Normalizer)


@pytest.mark.parametrize("value", [None, True, {"a": 1}, ["x"], "   "])
def test_non_text_values_are_invalid(value: object) -> None:
    with pytest.raises(InvalidValue):
        normalize(value, Normalizer.email)
