"""Type stubs of the private native extension (use the public wrappers instead)."""

import numpy as np
import numpy.typing as npt

LBP_MAX_POINTS: int
COLOUR_BINS: int

def lbp_uniform_u8(image: npt.NDArray[np.uint8], P: int, R: float) -> npt.NDArray[np.uint8]: ...
def lbp_uniform_f64(image: npt.NDArray[np.float64], P: int, R: float) -> npt.NDArray[np.uint8]: ...
def slic(
    image: npt.NDArray[np.uint8],
    n_segments: int,
    compactness: float,
    max_iter: int,
    mask: npt.NDArray[np.uint8] | None,
    enforce_connectivity: bool,
    min_size_factor: float,
) -> tuple[npt.NDArray[np.int32], int]: ...
def superpixel_features(
    image: npt.NDArray[np.uint8], labels: npt.NDArray[np.int32], n_labels: int, P: int, R: float
) -> npt.NDArray[np.float64]: ...
def thin(mask: npt.NDArray[np.uint8], max_iter: int) -> tuple[npt.NDArray[np.uint8], int]: ...
def enclosed_regions(
    skeleton: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.uint8]]: ...
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
) -> npt.NDArray[np.int32]: ...
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
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
def distance_transform_edt(mask: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]: ...
def label_table(
    labels: npt.NDArray[np.int32], min_px: int, max_label: int
) -> tuple[npt.NDArray[np.int32], int, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
