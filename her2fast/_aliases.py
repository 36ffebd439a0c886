"""The flat module names of her2fast 0.1 (``her2fast.slide``, ``her2fast.membrane``, ...) as aliases of
the modules' places in the layered package, so that code written against 0.1 keeps importing.

``import her2fast.superpixels`` gives the module object of :mod:`her2fast.stages.superpixels` itself
(one module, two names), so attributes set on either are seen by both.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

#: old flat name -> the module's place now (both under ``her2fast.``)
MOVED: dict[str, str] = {
    "slide": "io.slide",
    "store": "io.store",
    "report": "service.report",
    "tissue": "stages.tissue",
    "stain": "stages.stain",
    "superpixels": "stages.superpixels",
    "texture": "stages.texture",
    "epithelium": "stages.epithelium",
    "membrane": "stages.membrane",
    "nuclei": "stages.nuclei",
    "cells": "stages.cells",
    "morphology": "stages.morphology",
    "batch": "service.batch",
    "watch": "service.watch",
    "evaluate": "validation.evaluate",
    "evaluation_report": "validation.report",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None  # a throwaway module; exec_module puts the real one in its place

    def exec_module(self, module: ModuleType) -> None:
        # the import system re-reads sys.modules after exec_module, so the alias name gets the target
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _AliasFinder(importlib.abc.MetaPathFinder):
    def __init__(self, package: str) -> None:
        self.prefix = package + "."
        self.package = package

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if not fullname.startswith(self.prefix):
            return None
        new = MOVED.get(fullname[len(self.prefix) :])
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(f"{self.package}.{new}"))


def install(package: str) -> None:
    """Resolve the old flat names under ``package`` (idempotent)."""
    if not any(isinstance(f, _AliasFinder) and f.package == package for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder(package))
