"""The Examples sections of the public modules run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "her2fast.stages.texture",
    "her2fast.stages.superpixels",
    "her2fast.stages.cells",
    "her2fast.scoring",
    "her2fast.validation.evaluate",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
