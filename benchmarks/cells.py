"""Per-tile cell measurement: ms per 512^2 tile (+ 48 px margin), single thread, against a reference path.

    python benchmarks/cells.py [--tiles 6] [--category 2+]

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=6)
    ap.add_argument("--category", default="2+")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

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
