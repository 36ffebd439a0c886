"""The reference pipeline of ``her2fast bench pipeline``: the same work done the obvious way.

Epithelium with scikit-image SLIC and LBP and a scikit-learn RBF kernel (:func:`reference_epithelium`);
per tile, deconvolution, the U-Net in PyTorch eager, nuclei and cells with SciPy and scikit-image
(:class:`ReferenceTiles`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["reference_epithelium", "ReferenceTiles"]


def reference_epithelium(slide, tissue, model) -> tuple[np.ndarray, int]:
    """Epithelium mask at the model's resolution, the obvious way (one image, skimage, sklearn)."""
    from skimage.feature import local_binary_pattern
    from skimage.segmentation import slic
    from sklearn.metrics.pairwise import rbf_kernel

    from ...stages.epithelium.features import _H_NUCLEAR_OD, STAIN_BINS, STAIN_OD_MAX, WHITE_REFERENCE
    from ...stages.stain import StainVectors, deconvolve
    from ...stages.superpixels import COLOUR_BINS
    from ..reference import grey_level, superpixel_features_reference

    s = model.settings
    w0, h0 = slide.dimensions
    w, h = int(round(w0 * slide.mpp_x / s.mpp)), int(round(h0 * slide.mpp_y / s.mpp))
    image = slide.read(0, 0, w, h, s.mpp)
    standard = StainVectors.standard()
    stains = StainVectors(standard.hematoxylin, standard.dab, background=tissue.background)
    seen = image
    if s.white_balance:  # each channel scaled so the glass reads WHITE_REFERENCE
        seen = np.clip(np.rint(image * (WHITE_REFERENCE / stains.background)), 0, 255).astype(np.uint8)
    n_segments = max(1, int(w * h * s.mpp**2 / s.superpixel_um**2))
    labels = slic(seen, n_segments=n_segments, compactness=s.compactness, max_num_iter=s.max_num_iter, start_label=0)
    codes = local_binary_pattern(grey_level(seen), s.lbp_points, s.lbp_radius, method="uniform")
    hist = superpixel_features_reference(seen, labels, s.lbp_points, s.lbp_radius, lbp_codes=codes)
    # the classifier's stain columns (numpy; see her2fast.stages.epithelium.superpixel_features)
    conc = deconvolve(image, stains)
    k = hist.shape[0]
    cnt = np.maximum(hist[:, -1], 1)
    hem, dab = conc.hematoxylin.astype(np.float64).ravel(), conc.dab.astype(np.float64).ravel()
    lab = labels.ravel()
    mean_h, mean_d = np.bincount(lab, hem, k) / cnt, np.bincount(lab, dab, k) / cnt
    nuc = np.bincount(lab, (hem > _H_NUCLEAR_OD).astype(np.float64), k) / cnt
    std_h = np.sqrt(np.maximum(np.bincount(lab, hem * hem, k) / cnt - mean_h**2, 0))
    if s.colour_histograms == "rgb":
        colour = [hist[:, :-1]]
    else:
        colour = []
        for od in (hem, dab):
            counts, _, _ = np.histogram2d(
                lab, np.clip(od, 0.0, STAIN_OD_MAX - 1e-9), bins=(k, STAIN_BINS), range=((0, k), (0.0, STAIN_OD_MAX))
            )
            colour.append(counts / cnt[:, None])
        colour.append(hist[:, COLOUR_BINS:-1])
    feats = np.column_stack([*colour, mean_h, mean_d, nuc, std_h])
    z = (feats - model.feature_mean) / model.feature_scale
    decision = rbf_kernel(z, model.support_vectors, gamma=model.gamma) @ model.dual_coef.ravel() + model.intercept
    return (decision > 0)[labels], int(labels.max()) + 1


class ReferenceTiles:
    """The per-tile stages the obvious way (see the module docstring)."""

    def __init__(self, mpp: float, threads: int) -> None:
        from ...stages.cells import CellSettings

        self.mpp = mpp
        self.radius = CellSettings().max_radius_um / mpp
        self.net = None
        self.membrane_runtime = "onnxruntime (torch or training/ not available)"
        try:
            import torch

            root = Path(__file__).resolve().parents[3]  # above pipeline/, bench/, her2fast/: the repository
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            from training.export_membrane import CalibratedWrapper, build_model

            from ...stages.membrane import load_model_config

            weights = root / "training" / "weights" / "membrane_unet_w8.npz"
            bias = load_model_config().raw["calibration"]["logit_bias"]
            torch.set_num_threads(threads)
            self.net = CalibratedWrapper(build_model(weights)[0], bias).eval()
            self.torch = torch
            self.membrane_runtime = f"torch {torch.__version__} eager, {threads} threads"
        except Exception:  # noqa: BLE001 - any missing piece: fall back to ONNX Runtime and say so
            self.threads = threads

    def membrane(self, image: np.ndarray) -> np.ndarray:
        if self.net is None:
            from ...stages.membrane import predict

            return predict(image, self.mpp, threads=self.threads) >= 0.5
        o = 32
        h, w = image.shape[:2]
        ph, pw = -(-(h + 2 * o) // 16) * 16, -(-(w + 2 * o) // 16) * 16
        padded = np.pad(image, ((o, ph - h - o), (o, pw - w - o), (0, 0)), mode="symmetric")
        x = self.torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0)
        with self.torch.inference_mode():
            mem = self.net(x)[0]
        return mem[0, 0, o : o + h, o : o + w].numpy() >= 0.5

    def nuclei(self, hema: np.ndarray) -> np.ndarray:
        from scipy import ndimage as ndi
        from skimage.morphology import disk, h_maxima
        from skimage.segmentation import watershed

        # rgb2hed's unit is log(I)/log(1e-6): the pipeline's 0.27 natural-log OD is 0.27 / 13.8 here
        fg = ndi.gaussian_filter(hema.astype(np.float32), 0.5 / self.mpp) >= 0.27 / (6 * np.log(10))
        fg = ndi.binary_opening(fg, structure=disk(round(1.0 / self.mpp)))
        fg = ndi.binary_fill_holes(fg)
        comp, n = ndi.label(fg, structure=np.ones((3, 3)))
        if n == 0:
            return comp
        areas = np.bincount(comp.ravel())
        fg = (areas >= 8 / self.mpp**2)[comp] & fg
        dist = ndi.distance_transform_edt(fg)
        peaks = h_maxima(dist, 0.25 / self.mpp) if dist.max() > 0.5 else fg.astype(np.uint8)
        markers, _ = ndi.label(peaks & fg, structure=np.ones((3, 3)))
        return watershed(-dist, markers, mask=fg, connectivity=2)

    def cells(self, mem: np.ndarray, od: np.ndarray, nuc: np.ndarray) -> int:
        from scipy import ndimage as ndi
        from skimage.morphology import skeletonize
        from skimage.segmentation import watershed

        markers, n = ndi.label(nuc > 0, structure=np.ones((3, 3)))
        near = ndi.distance_transform_edt(markers == 0) <= self.radius
        terr = watershed(mem.astype(np.float32), markers, connectivity=1, mask=near)
        skeletonize(mem)
        ndi.label(~mem)
        inner = ndi.binary_erosion(terr > 0, structure=np.ones((3, 3)))
        boundary = ((terr > 0) & ~inner) | (terr != np.roll(terr, 1, 0)) | (terr != np.roll(terr, 1, 1))
        lab_b = terr[boundary & (terr > 0)]
        np.bincount(lab_b, weights=mem[boundary & (terr > 0)], minlength=n + 1)
        on = mem & (terr > 0)
        np.bincount(terr[on], weights=od[on], minlength=n + 1)
        return n

    def tile(self, image: np.ndarray, timings: dict[str, float]) -> int:
        from skimage.color import rgb2hed

        t0 = time.perf_counter()
        hed = rgb2hed(image)
        t1 = time.perf_counter()
        mem = self.membrane(image)
        t2 = time.perf_counter()
        nuc = self.nuclei(hed[..., 0])
        t3 = time.perf_counter()
        n = self.cells(mem, hed[..., 2], nuc)
        t4 = time.perf_counter()
        for k, v in (("deconvolve", t1 - t0), ("membrane", t2 - t1), ("nuclei", t3 - t2), ("cells", t4 - t3)):
            timings[k] = timings.get(k, 0.0) + v
        return n
