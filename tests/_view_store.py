"""A small results store for the viewer's tests: a scored phantom plus made-up runs (plain image, broken slide,
failed run, a name that needs escaping)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = 768
#: a slide name that must be escaped wherever it is shown
EVIL_NAME = "pl<b>ain&'\"x.png"


@dataclass
class ViewStore:
    out: Path
    ok: int  # the scored phantom (OpenSlide generic TIFF)
    plain: int  # the same pixels as a PNG (her2fast's reader) with the phantom's results
    broken: int  # an ok row whose slide file no longer opens
    failed: int  # a failed run
    slide: Path
    pixels: np.ndarray


def make_view_store(folder: Path) -> ViewStore:
    from PIL import Image

    from her2fast.io.slide import open_slide
    from her2fast.io.store import ResultsStore, RunRecord, slide_identity
    from her2fast.service.batch import score_to_store
    from her2fast.synth import make_slide

    slides = folder / "slides"
    slides.mkdir(parents=True)
    out = folder / "out"
    slide = make_slide(slides / "ph3.tiff", category="3+", width=SIZE, height=SIZE, seed=905).path
    with open_slide(slide) as s:
        pixels = s.read(0, 0, SIZE, SIZE)
        mpp = s.mpp_x
    with ResultsStore(out) as store:
        row = score_to_store(slide, out, store=store, pictures=False, geojson=True)
        assert row["status"] == "ok", row["error"]
        plain = slides / EVIL_NAME
        Image.fromarray(pixels).save(plain, dpi=(25400 / mpp, 25400 / mpp))
        common = {k: row[k] for k in ("score", "stratum", "category", "confidence", "percent_complete")}
        _, prow = store.insert(
            RunRecord(
                slide=slide_identity(plain),
                status="ok",
                package_version=row["package_version"],
                outputs=row["outputs"],
                percentages=row["percentages"],
                flags=["near_cutoff"],
                **common,
            )
        )
        broken = slides / "broken.tiff"
        shutil.copy(slide, broken)
        ident = slide_identity(broken)
        broken.write_bytes(b"II*\x00" + b"\x00" * 64)  # scored, then the file was damaged
        _, brow = store.insert(
            RunRecord(slide=ident, status="ok", package_version="0", outputs=row["outputs"], **common)
        )
        missing = slides / "gone.svs"
        _, frow = store.insert(
            RunRecord(
                slide=type(ident)(str(missing), 0, 0.0, ""),
                status="failed",
                package_version="0",
                error=f"slide file not found: {missing}",
            )
        )
    return ViewStore(out, row["id"], prow["id"], brow["id"], frow["id"], slide, pixels)
