"""A slide's report files written into a folder: :func:`write_report` and their names, :func:`report_paths`."""

from __future__ import annotations

import functools
from pathlib import Path

from ...errors import InvalidInputError
from .geojson import write_geojson
from .pictures import heatmap_image, overlay_image, zoom_image

__all__ = ["write_report", "report_paths"]


def report_paths(out_dir: str | Path, name: str) -> dict[str, Path]:
    """The files :func:`write_report` writes for a slide called ``name``."""
    d = Path(out_dir)
    return {
        "json": d / f"{name}.her2fast.json",
        "cells": d / f"{name}.cells.npz",
        "geojson": d / f"{name}.geojson",
        "overlay": d / f"{name}.overlay.png",
        "zoom": d / f"{name}.zoom.png",
        "heatmap": d / f"{name}.heatmap.png",
    }


def write_report(
    result,
    out_dir: str | Path,
    *,
    name: str | None = None,
    slide=None,
    pictures: bool = True,
    geojson: bool = True,
    protect=(),
) -> dict[str, Path]:
    """Write the result JSON, the cell table and (optionally) GeoJSON and pictures to ``out_dir``.

    Each file is written atomically (complete under a temporary name, then renamed onto its name), so a
    symbolic link planted in ``out_dir`` is replaced, never written through; no file replaces the slide
    itself or any file of ``protect``.

    Parameters
    ----------
    result : SlideResult
        From :func:`her2fast.score` (pictures need its ``maps``).
    out_dir : path
        Created if missing.
    name : str, optional
        File name stem (default: the slide's file name without its suffix).
    slide : her2fast.io.slide.Slide, optional
        The open slide (default: opened again from ``result.path`` with the result's resolution).
    pictures, geojson : bool
    protect : collection of (int, int)
        (device, inode) keys (:func:`her2fast._files.input_keys`) of files no output may replace, e.g. every
        input of the run.

    Returns
    -------
    dict of str to Path
        The files written (keys of :func:`report_paths`).

    Raises
    ------
    OutputError
        An output name is one of the run's input files.
    """
    from ..._files import atomic_write, atomic_write_text, input_keys
    from ...api import SlideResult

    if not isinstance(result, SlideResult):
        raise InvalidInputError(f"result must be a her2fast.SlideResult, got {type(result).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = name or Path(result.path).stem
    paths = report_paths(out, stem)
    written: dict[str, Path] = {}
    protect = frozenset(protect) | input_keys([result.path])
    atomic_write_text(paths["json"], result.to_json(include_cells=False), protect=protect)
    written["json"] = paths["json"]
    atomic_write(paths["cells"], result.cells.save_npz, protect=protect)
    written["cells"] = paths["cells"]
    if geojson:
        written["geojson"] = write_geojson(result, paths["geojson"], protect=protect)
    if pictures and result.maps is not None and result.maps.n_cols:
        own = slide is None
        if own:
            from ...io.slide import open_slide

            meta = result.provenance.get("slide", {})
            mpp = (meta["mpp_x"], meta["mpp_y"]) if meta.get("mpp_source") in ("user", "estimated") else None
            slide = open_slide(result.path, mpp=mpp)
        try:
            for kind, draw in (("overlay", overlay_image), ("zoom", zoom_image), ("heatmap", heatmap_image)):
                picture = draw(result, slide)
                atomic_write(paths[kind], functools.partial(picture.save, format="PNG"), protect=protect)
                written[kind] = paths[kind]
        finally:
            if own:
                slide.close()
    return written
