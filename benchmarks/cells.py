"""Per-tile cell measurement: ms per 512^2 tile (+ 48 px margin), single thread, against a reference path.

    python benchmarks/cells.py [--tiles 6] [--category 2+]
    python benchmarks/cells.py --post [--windows 3] [--repeat 7]

``--post``: the tile stream's post-processing per 704^2 window (+ 48 px margins, 800^2 read), on the
stream's inputs (phantom window, colour deconvolution, U-Net membrane): ms per window of the cell
territories' flood alone (:func:`her2fast.stages.cells.measure_tile`'s native seeded watershed, against
``skimage.segmentation.watershed`` of the same landscape and markers), of the nuclei
(:func:`her2fast.stages.nuclei.segment_nuclei`, one native pass, against its SciPy / NumPy steps
``_segment_nuclei_steps``) and of the cells (:func:`her2fast.stages.cells.measure_tile` with its native
ray summary, cytoplasm dilation, label counts and sums, against the same call with the NumPy steps they replaced:
the ``*_reference`` helpers), measured alternately in one run, median over the repeats, one thread.

Ours: :func:`her2fast.stages.cells.measure_tile` (C++ watershed with membrane barrier and radius limit, C++
Guo-Hall thinning and region labelling, C++ rays). Reference, measured in the same run on the same
tiles: scikit-image's watershed (markers = nuclei, mask = within the radius of a nucleus) +
``skimage.morphology.skeletonize`` + ``scipy.ndimage.label`` of the background + numpy per-cell
boundary coverage (fraction of each territory's boundary pixels on membrane) and mean membrane OD.
Inputs: phantom ground truth (membrane mask, true DAB OD, nucleus labels).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def reference(mem: np.ndarray, od: np.ndarray, nuc: np.ndarray, radius: float) -> dict[str, np.ndarray]:
    from scipy import ndimage as ndi
    from skimage.morphology import skeletonize
    from skimage.segmentation import watershed

    markers, n = ndi.label(nuc > 0, structure=np.ones((3, 3)))
    centres = np.array(ndi.center_of_mass(nuc > 0, markers, range(1, n + 1))) if n else np.zeros((0, 2))
    near = ndi.distance_transform_edt(markers == 0) <= radius
    terr = watershed(mem.astype(np.float32), markers, connectivity=1, mask=near)
    skel = skeletonize(mem)
    regions, _ = ndi.label(~skel)
    inner = ndi.binary_erosion(terr > 0, structure=np.ones((3, 3)))
    boundary = (terr > 0) & ~inner | (terr != np.roll(terr, 1, 0)) | (terr != np.roll(terr, 1, 1))
    lab_b = terr[boundary & (terr > 0)]
    cov = np.bincount(lab_b, weights=mem[boundary & (terr > 0)], minlength=n + 1)
    tot = np.bincount(lab_b, minlength=n + 1)
    on = mem & (terr > 0)
    od_sum = np.bincount(terr[on], weights=od[on], minlength=n + 1)
    od_cnt = np.bincount(terr[on], minlength=n + 1)
    return {
        "completeness": cov[1:] / np.maximum(tot[1:], 1),
        "od": od_sum[1:] / np.maximum(od_cnt[1:], 1),
        "centres": centres,
        "regions": regions,
    }


def post(n_windows: int, repeat: int) -> None:
    """Nuclei and cells per stream window: native against the Python / NumPy steps, alternately."""
    import her2fast.stages.cells as cells_mod
    from her2fast.stages import membrane, stain
    from her2fast.stages.nuclei import DEFAULT_NUCLEI_SETTINGS, _segment_nuclei_steps, segment_nuclei
    from her2fast.synth import make_tile

    mpp, side, margin = 0.5, 704, 48
    windows = []
    for i in range(n_windows):
        t = make_tile(side + 2 * margin, category=["1+", "2+", "3+", "0"][i % 4], seed=300 + i)
        conc = stain.deconvolve(t.rgb, stain.estimate_stain_vectors(t.rgb))
        windows.append((conc.hematoxylin, conc.dab, membrane.predict(t.rgb, mpp)))
    core = (margin, margin, margin + side, margin + side)
    nuclei = [segment_nuclei(h, mpp) for h, _, _ in windows]
    names = ("_ray_summary", "_near_membrane", "_label_counts", "_region_sums", "_skeleton_regions")
    # each helper is swapped where measure_tile's code looks it up (_near_membrane: in intensity._cytoplasm_od)
    where = tuple(cells_mod.intensity if k == "_near_membrane" else cells_mod.measure for k in names)
    native_helpers = tuple(getattr(cells_mod, k) for k in names)
    numpy_helpers = tuple(getattr(cells_mod, k + "_reference") for k in names)

    def nuclei_native() -> object:
        return [segment_nuclei(h, mpp) for h, _, _ in windows]

    def nuclei_steps() -> object:
        return [_segment_nuclei_steps(h, mpp, None, DEFAULT_NUCLEI_SETTINGS) for h, _, _ in windows]

    def cells_with(helpers: tuple) -> object:
        for mod, k, fn in zip(where, names, helpers):
            setattr(mod, k, fn)
        try:
            return [
                cells_mod.measure_tile(p, d, n, mpp=mpp, origin=(0, 0), core=core).cells
                for (_, d, p), n in zip(windows, nuclei)
            ]
        finally:
            for mod, k, fn in zip(where, names, native_helpers):
                setattr(mod, k, fn)

    # the flood alone: the seeded_watershed calls of measure_tile, captured once, against scikit-image's
    # watershed of the same landscape and markers (plain: no barrier, radius or climb)
    floods = []
    native = cells_mod._native

    class Capture:
        def __getattr__(self, name: str) -> object:
            fn = getattr(native, name)
            if name != "seeded_watershed":
                return fn

            def wrapped(*args: object) -> object:
                floods.append(args)
                return fn(*args)

            return wrapped

    cells_mod._native = Capture()  # type: ignore[assignment]
    try:
        for (_, d, p), n in zip(windows, nuclei):
            cells_mod.measure_tile(p, d, n, mpp=mpp, origin=(0, 0), core=core)
    finally:
        cells_mod._native = native

    def flood_native() -> object:
        return [native.seeded_watershed(*args) for args in floods]

    def flood_skimage() -> object:
        from skimage.segmentation import watershed

        return [watershed(args[0], args[1], connectivity=1) for args in floods]

    runs = {
        "flood native": flood_native,
        "flood skimage": flood_skimage,
        "nuclei native": nuclei_native,
        "nuclei steps": nuclei_steps,
        "cells native": lambda: cells_with(native_helpers),
        "cells numpy": lambda: cells_with(numpy_helpers),
    }
    # the same results (the tests check this exactly; here a guard that the timed paths are comparable)
    for a, b in zip(nuclei_native(), nuclei_steps()):  # type: ignore[call-overload]
        assert np.array_equal(a, b)
    for a, b in zip(runs["cells native"](), runs["cells numpy"]()):  # type: ignore[call-overload]
        assert np.array_equal(a.completeness, b.completeness) and np.array_equal(a.membrane_dab_od, b.membrane_dab_od)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeat):  # alternate the paths, so load from other processes hits both alike
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / len(windows) * 1e3)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(
        f"{len(windows)} phantom windows {side}^2 + {margin} px margins ({side + 2 * margin}^2), U-Net membrane, "
        f"{sum(int(n.max()) for n in nuclei) / len(windows):.0f} nuclei per window, 1 thread, median of {repeat}"
    )
    print(
        f"flood  native {med['flood native']:7.1f} ms/window   skimage watershed {med['flood skimage']:7.1f} ms/window   "
        f"ratio {med['flood skimage'] / med['flood native']:.2f}x  (measure_tile's seeded_watershed: barrier, radius, "
        "climb; scikit-image's plain watershed of the same landscape and markers)"
    )
    for stage in ("nuclei", "cells"):
        ref = "steps" if stage == "nuclei" else "numpy"
        print(
            f"{stage:6s} native {med[f'{stage} native']:7.1f} ms/window   python/numpy path "
            f"{med[f'{stage} {ref}']:7.1f} ms/window   ratio {med[f'{stage} {ref}'] / med[f'{stage} native']:.2f}x"
        )
    total_native = med["nuclei native"] + med["cells native"]
    total_ref = med["nuclei steps"] + med["cells numpy"]
    print(f"nuclei + cells: native {total_native:.1f} ms/window, python/numpy path {total_ref:.1f} ms/window")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=6)
    ap.add_argument("--category", default="2+")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--post", action="store_true", help="nuclei and cells per stream window, native vs NumPy")
    ap.add_argument("--windows", type=int, default=3)
    args = ap.parse_args()
    if args.post:
        post(args.windows, max(args.repeat, 5))
        return

    from her2fast.stages.cells import CellSettings, measure_tile
    from her2fast.synth import make_tile

    T, OV, mpp = 512, 48, 0.5
    P = T + 2 * OV
    tiles = []
    for i in range(args.tiles):
        gt = make_tile(P, category=args.category, seed=100 + i, jpeg_quality=None, origin=(i * 4096, 0))
        tiles.append((gt.membrane_mask, gt.dab_od, np.where(gt.nuclei_mask, gt.cell_labels, 0)))
    settings = CellSettings()
    radius = settings.max_radius_um / mpp

    def run_ours() -> int:
        n = 0
        for mem, od, nuc in tiles:
            n += len(measure_tile(mem, od, nuc, mpp=mpp, origin=(-OV, -OV), core=(0, 0, T, T)).cells)
        return n

    def run_ref() -> int:
        n = 0
        for mem, od, nuc in tiles:
            n += len(reference(mem, od, nuc, radius)["completeness"])
        return n

    run_ours(), run_ref()  # warm-up
    best = {}
    for name, fn in (("ours", run_ours), ("reference", run_ref)):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        best[name] = min(times) / len(tiles) * 1e3
    n_cells = run_ours() / len(tiles)
    print(
        f"{len(tiles)} phantom tiles {T}^2 + {OV} px margin ({P}^2 read), category {args.category}, "
        f"{n_cells:.0f} owned cells per tile, 1 thread, best of {args.repeat}"
    )
    print(f"measure_tile (ours):                       {best['ours']:7.1f} ms/tile")
    print(f"reference (skimage watershed+skeletonize): {best['reference']:7.1f} ms/tile")
    print(f"speed-up: {best['reference'] / best['ours']:.2f}x")


if __name__ == "__main__":
    main()
