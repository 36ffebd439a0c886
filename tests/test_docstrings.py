"""The Examples sections of the public modules run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["her2fast.texture", "her2fast.superpixels", "her2fast.cells", "her2fast.scoring", "her2fast.evaluate"]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
