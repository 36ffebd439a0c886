"""``her2fast demo``: the README's main job.

Default (:func:`run_score_demo`): generate a small phantom slide (:func:`her2fast.synth.make_slide`,
pyramidal TIFF with ground truth), score it with :func:`her2fast.score`, write the report (JSON,
QuPath GeoJSON, overlay, zoom, heat map) and print the score next to the phantom's true category and
where the outputs are.

``her2fast demo --kernels`` (:func:`run_demo`): the native kernels on a real IHC image -- SLIC
superpixels, uniform LBP and the per-superpixel feature matrix of the epithelium classifier, on
scikit-image's real IHC sample (DAB + hematoxylin) or on an image you pass.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import __version__
from .errors import InvalidInputError
from .stages.superpixels import feature_names, slic, superpixel_features
from .stages.texture import local_binary_pattern


def _load_image(image_path: str | None) -> tuple[np.ndarray, str]:
    if image_path is None:
        from skimage import data

        return data.immunohistochemistry(), "skimage.data.immunohistochemistry() (real IHC, DAB + hematoxylin)"
    path = Path(image_path)
    if not path.is_file():
        raise InvalidInputError(f"image file not found: {path}")
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.ascontiguousarray(np.asarray(im.convert("RGB"))), str(path)
    except OSError as exc:
        raise InvalidInputError(f"cannot read image {path}: {exc}") from exc


def run_demo(out_dir: str = "her2fast_demo", image_path: str | None = None, n_segments: int = 400) -> int:
    """Run the kernels on one image, write pictures + features to ``out_dir``, print a summary.

    Returns the process exit code (0).
    """
    from PIL import Image
    from skimage.segmentation import mark_boundaries

    from .bench.reference import grey_level

    image, source = _load_image(image_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    t0 = time.perf_counter()
    labels = slic(image, n_segments=n_segments, compactness=10.0)
    timings["slic_ms"] = (time.perf_counter() - t0) * 1e3
    grey = grey_level(image)
    t0 = time.perf_counter()
    codes = local_binary_pattern(grey, P=8, R=1.0)
    timings["lbp_ms"] = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    features = superpixel_features(image, labels)
    timings["features_ms"] = (time.perf_counter() - t0) * 1e3

    overlay = (mark_boundaries(image, labels, color=(1.0, 1.0, 0.0)) * 255).astype(np.uint8)
    Image.fromarray(overlay).save(out / "superpixels.png")
    Image.fromarray((codes.astype(np.uint16) * 255 // 9).astype(np.uint8)).save(out / "lbp_codes.png")
    np.savetxt(
        out / "superpixel_features.csv",
        features,
        delimiter=",",
        header=",".join(feature_names(8)),
        comments="",
        fmt="%.6g",
    )
    summary = {
        "her2fast_version": __version__,
        "image": source,
        "shape": list(image.shape),
        "n_superpixels": int(labels.max()) + 1,
        "feature_matrix_shape": list(features.shape),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "outputs": ["superpixels.png", "lbp_codes.png", "superpixel_features.csv"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"her2fast {__version__} demo on {source}, {image.shape[1]}x{image.shape[0]} px")
    print(
        f"  SLIC: {summary['n_superpixels']} superpixels in {timings['slic_ms']:.1f} ms  -> {out / 'superpixels.png'}"
    )
    print(f"  uniform LBP (P=8, R=1) in {timings['lbp_ms']:.1f} ms  -> {out / 'lbp_codes.png'}")
    print(
        f"  features {features.shape[0]} x {features.shape[1]} in {timings['features_ms']:.1f} ms  "
        f"-> {out / 'superpixel_features.csv'}"
    )
    print(f"  summary -> {out / 'summary.json'}   (speed against scikit-image: her2fast bench kernels)")
    return 0


def run_score_demo(
    out_dir: str = "her2fast_demo", *, category: str = "3+", size: int = 2048, seed: int = 2024, method: str = "unet"
) -> int:
    """Make a ``size`` x ``size`` phantom slide of ``category``, score it, write the report, print a summary.

    Returns the process exit code (0 when the score matches the phantom's true category, 1 otherwise).
    """
    from .api import score
    from .pipeline import ScoreSettings
    from .service.report import write_report
    from .synth import make_slide

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    slide_path = out / f"phantom_{category}.tiff"
    t0 = time.perf_counter()
    truth = make_slide(slide_path, category=category, width=size, height=size, mpp=0.5, seed=seed)
    t_make = time.perf_counter() - t0
    print(
        f"her2fast {__version__} demo: phantom slide {slide_path} ({size}x{size} px at 0.5 um/px, true category "
        f"{truth.category}, {int(truth.cells.is_tumour.sum())} tumour cells) made in {t_make:.1f} s"
    )
    result = score(slide_path, settings=ScoreSettings(membrane_method=method), progress=True)
    files = write_report(result, out)
    true_score = "0" if truth.category == "0+" else truth.category
    if result.score is None:
        print(f"  not scorable: {result.not_scorable}")
    else:
        print(
            f"  HER2 score {result.score} (stratum {result.stratum}; truth {true_score}), "
            f"{result.percent_complete:.1f} % tumour cells with complete membranes, confidence {result.confidence:.2f}"
        )
        print(
            f"  {result.counts['tumour_cells']} tumour cells in {result.counts['tiles_segmented']} tiles, "
            f"{result.timings['total']:.1f} s (tile phase {result.timings.get('tiles_wall', 0):.1f} s, "
            f"{result.provenance.get('pipeline', {}).get('tiles_per_s', 0):.2f} tiles/s)"
            + (f"; flags: {', '.join(result.flags)}" if result.flags else "")
        )
    print("  outputs:")
    for key, path in files.items():
        print(f"    {key:8s} {path}")
    return 0 if result.score == true_score else 1
