"""The Examples sections of every her2fast module run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import her2fast

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(her2fast.__path__, "her2fast.")
    if m.name != "her2fast.__main__"  # running it would start the command line
)


def test_the_module_list_is_the_package():
    assert len(MODULES) > 60 and "her2fast.scoring.uncertainty" in MODULES and "her2fast.stages.cells" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
