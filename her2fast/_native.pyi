"""Type stubs of the private native extension (use the public wrappers instead).

Every array argument must be C-contiguous, non-empty and of exactly the dtype written here; the
extension raises ValueError otherwise (it does not convert).
"""

import numpy as np
import numpy.typing as npt

LBP_MAX_POINTS: int
COLOUR_BINS: int

# csrc/bindings/lbp_py.cpp
def lbp_uniform_u8(image: npt.NDArray[np.uint8], P: int, R: float) -> npt.NDArray[np.uint8]:
    """Uniform (riu2) LBP codes 0..P+1 of a 2-D uint8 image."""

def lbp_uniform_f64(image: npt.NDArray[np.float64], P: int, R: float) -> npt.NDArray[np.uint8]:
    """Uniform (riu2) LBP codes 0..P+1 of a 2-D float64 image."""

# csrc/bindings/slic_py.cpp
def slic(
    image: npt.NDArray[np.uint8],
    n_segments: int,
    compactness: float,
    max_iter: int,
    mask: npt.NDArray[np.uint8] | None,
    enforce_connectivity: bool,
    min_size_factor: float,
) -> tuple[npt.NDArray[np.int32], int]:
    """SLIC superpixels of an (H, W, 3) image -> (labels int32 (H, W), number of superpixels)."""

# csrc/bindings/superpixel_features_py.cpp
def superpixel_features(
    image: npt.NDArray[np.uint8], labels: npt.NDArray[np.int32], n_labels: int, P: int, R: float
) -> npt.NDArray[np.float64]:
    """Per superpixel: colour histogram | LBP histogram | pixel count -> float64 (n_labels, COLOUR_BINS + P + 3)."""

# csrc/bindings/skeleton_py.cpp
def thin(mask: npt.NDArray[np.uint8], max_iter: int) -> tuple[npt.NDArray[np.uint8], int]:
    """Guo-Hall thinning of a 2-D mask -> (skeleton uint8 0/1, iterations)."""

def enclosed_regions(
    skeleton: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """4-connected background regions of a skeleton -> (labels int32, area int64, touches_border uint8)."""

# csrc/bindings/watershed_py.cpp
def seeded_watershed(
    elevation: npt.NDArray[np.float32],
    markers: npt.NDArray[np.int32],
    n_labels: int,
    mask: npt.NDArray[np.uint8] | None,
    barrier: float,
    max_radius: float,
    centre_base: npt.NDArray[np.int32] | None,
    centre_frac: npt.NDArray[np.float64] | None,
    climb: bool = False,
    connectivity: int = 4,
) -> npt.NDArray[np.int32]:
    """Seeded watershed with a membrane barrier and a per-label radius limit -> labels int32."""

# csrc/bindings/membrane_rays_py.cpp
def membrane_rays(
    labels: npt.NDArray[np.int32],
    membrane: npt.NDArray[np.uint8],
    dab_od: npt.NDArray[np.float32],
    centre_base: npt.NDArray[np.int32],
    centre_frac: npt.NDArray[np.float64],
    n_rays: int,
    max_length: float,
    outside_reach: float,
    max_run: float,
    cap_radius: float = ...,
    cap_reach: float = 0.0,
    cell_labels: npt.NDArray[np.int32] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Membrane runs along rays from each cell centre -> (run_length, peak_od), float32 (n, n_rays)."""

def own_side_gate(
    labels: npt.NDArray[np.int32],
    membrane: npt.NDArray[np.uint8],
    dab_od: npt.NDArray[np.float32],
    cell_labels: npt.NDArray[np.int32],
    centre_base: npt.NDArray[np.int32],
    centre_frac: npt.NDArray[np.float64],
    covered: npt.NDArray[np.uint8],
    run_length: npt.NDArray[np.float32],
    dir_x: npt.NDArray[np.float64],
    dir_y: npt.NDArray[np.float64],
    max_length: float,
    step: float,
    n05: int,
    n15: int,
    run_extra: int,
    far_weight: float,
) -> npt.NDArray[np.float64]:
    """Own-side gated peak DAB OD of each covered ray -> float64 (n_cells, n_rays), +inf where not measured."""

# csrc/bindings/reconstruct_py.cpp
def h_maxima(image: npt.NDArray[np.float32], height: float) -> npt.NDArray[np.uint8]:
    """Regional maxima of at least the given height (8-connected) -> uint8 0/1."""

def reconstruct_dilation(marker: npt.NDArray[np.float32], mask: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Grey reconstruction by dilation (8-connected) of marker under mask -> float32."""

# csrc/bindings/distance_py.cpp
def distance_transform_edt(mask: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Exact Euclidean distance of each nonzero pixel to the nearest zero pixel -> float32."""

# csrc/bindings/label_table_py.cpp
def label_table(
    labels: npt.NDArray[np.int32], min_px: int, max_label: int
) -> tuple[npt.NDArray[np.int32], int, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Objects of at least min_px pixels renumbered 1..n -> (labels int32, n, count, sum_x, sum_y)."""

# csrc/bindings/cell_stats_py.cpp
def cell_landscape(
    prob: npt.NDArray[np.float32],
    od: npt.NDArray[np.float32],
    threshold: float,
    half_threshold: float,
    od_weight: float,
    stain_cap: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """The cells' flood landscape and membrane mask -> (land float32 (h, w), membrane bool (h, w))."""

def region_max_dist2(
    regions: npt.NDArray[np.int32],
    region_ids: npt.NDArray[np.int32],
    centre_base: npt.NDArray[np.int32],
    centre_frac: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Largest squared distance of each listed region's pixels to its centre -> float64 (m,)."""

def label_means(
    labels: npt.NDArray[np.int32],
    values: npt.NDArray[np.float32],
    exclude: npt.NDArray[np.uint8],
    exclude_labels: npt.NDArray[np.int32],
    n_labels: int,
) -> npt.NDArray[np.float64]:
    """Mean value per label 1..n_labels over the pixels not excluded -> float64 (n_labels,), 0 where none."""

def deconvolve_rgb(
    rgb: npt.NDArray[np.uint8], lut: npt.NDArray[np.float32], unmix: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Optical density by lookup table, then the 3x3 unmixing -> float32 (3, H, W) stain planes."""

# csrc/bindings/nucleus_seeds_py.cpp
def component_distance_maxima(
    labels: npt.NDArray[np.int32], keep: npt.NDArray[np.uint8], height: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """Distance map and h-maxima of the kept components (keep: uint8 per label 0..n) -> (float32, uint8)."""

# csrc/bindings/nuclei_py.cpp
def segment_nuclei(
    hem: npt.NDArray[np.float32],
    mask: npt.NDArray[np.uint8] | None,
    smooth_weights: npt.NDArray[np.float64] | None,
    threshold: float,
    opening: npt.NDArray[np.uint8] | None,
    min_px: float,
    depth: float,
    seed_disk: npt.NDArray[np.uint8] | None,
) -> tuple[npt.NDArray[np.int32], int]:
    """Nucleus labels of a hematoxylin map in one pass -> (int32 labels, n); n = -1: use the whole-image path."""

def gaussian_smooth(image: npt.NDArray[np.float32], weights: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """scipy.ndimage.gaussian_filter(float32, mode='nearest') with the given symmetric 1-D weights -> float32."""

def binary_morphology(
    mask: npt.NDArray[np.uint8], structure: npt.NDArray[np.uint8], erode: bool
) -> npt.NDArray[np.bool_]:
    """AND (erode) or OR of the mask shifted by every offset of the structure (rows: single runs), outside 0."""

# csrc/bindings/ray_summary_py.cpp
def ray_summary(
    run: npt.NDArray[np.float32], peak: npt.NDArray[np.float32], run_tol: npt.NDArray[np.float32] | None, gap: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Per cell: completeness (gaps <= gap closed), lower medians of covered peak OD and run, covered rays."""

def label_sums(
    labels: npt.NDArray[np.int32], n_labels: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pixel count and sums of column and row indices per label 0..n_labels - 1 (others ignored) -> int64."""
