// The nuclei stage in one native pass (for her2fast.stages.nuclei.segment_nuclei): Gaussian smoothing,
// threshold, opening, hole filling, component labelling and area filter, per-component distance
// h-maxima (nucleus_seeds.hpp), seed dilation and labelling, and the seeded watershed of the components
// holding several seeds. Every step equals the SciPy / NumPy formulation it replaces bit for bit (same
// operations in the same order; the build has no FMA contraction), so the labels are the same:
// - smoothing: scipy.ndimage.gaussian_filter(float32, mode="nearest") = a correlation along axis 0 then
//   axis 1 with the (symmetric) weights given, summed in double from the outermost tap pair inwards as
//   SciPy's symmetric-kernel loop does, rounded to float32 after each axis;
// - binary erosion / dilation with a structuring element whose rows are single runs (a disk), border 0,
//   as scipy.ndimage.binary_erosion / binary_dilation;
// - hole filling as scipy.ndimage.binary_fill_holes (4-connected background not reaching the border);
// - labelling as scipy.ndimage.label with an all-ones 3x3 structure (8-connected, numbered in raster
//   order of each component's first pixel).
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// 8-connected components of `mask` (h x w, nonzero = foreground) numbered 1..n in raster order of
/// their first pixel (scipy.ndimage.label with np.ones((3, 3))); background 0. Returns n.
std::int32_t label8(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, std::int32_t* out);

/// scipy.ndimage.binary_fill_holes of `mask` (h x w, 0/1) into `out` (0/1; may alias `mask`).
void fill_holes(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, std::uint8_t* out);

/// AND (erode) or OR (dilate) of `mask` (0/1) shifted by every offset of `structure` (sh x sw, odd sides,
/// 0/1, each row empty or one run of ones): out(y, x) = op over (i, j) of mask(y + i - sh/2, x + j - sw/2),
/// pixels outside the image read 0. binary_erosion(m, s) is erode with s; binary_dilation(m, s) is dilate
/// with s reflected. An empty structure gives all `erode`. Throws std::invalid_argument for a row with
/// two runs or even sides. `out` must not alias `mask`.
void shift_reduce(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, const std::uint8_t* structure,
                  std::ptrdiff_t sh, std::ptrdiff_t sw, bool erode, std::uint8_t* out);

/// scipy.ndimage.gaussian_filter1d-style correlation of `in` (h x w float32) with the symmetric
/// `weights` (2 r + 1 doubles) along axis 0 and then axis 1, mode "nearest", float32 after each axis,
/// into `out` (may alias `in`).
void gaussian_smooth(const float* in, std::ptrdiff_t h, std::ptrdiff_t w, const double* weights, int r, float* out);

struct NucleiParams {
  const double* smooth_weights = nullptr;  ///< 2 * smooth_radius + 1 weights; null: no smoothing
  int smooth_radius = 0;
  float threshold = 0.0f;                 ///< foreground: smoothed value >= threshold
  const std::uint8_t* opening = nullptr;  ///< opening structure (opening_side^2, a disk); null: none
  std::ptrdiff_t opening_side = 0;
  double min_px = 0.0;                      ///< components with fewer pixels are dropped
  double depth = 0.5;                       ///< h-maxima height of the distance, in (0, 1)
  const std::uint8_t* seed_disk = nullptr;  ///< dilation of the seeds (seed_side^2, symmetric); null: none
  std::ptrdiff_t seed_side = 0;
};

/// The nucleus label map of the hematoxylin map `hem` (h x w float32, finite) into `labels` (h x w
/// int32): her2fast.stages.nuclei.segment_nuclei's steps (see there) for a split depth below one pixel.
/// `mask` (h x w, nonzero = nuclei allowed) may be null. Returns the number of labels, or -1 when the kept
/// components cover the whole image (no background to measure distances to: the caller's whole-image path
/// applies; `labels` is then unspecified). Throws std::invalid_argument on bad parameters.
std::int32_t segment_nuclei(const float* hem, std::ptrdiff_t h, std::ptrdiff_t w, const std::uint8_t* mask,
                            const NucleiParams& p, std::int32_t* labels);

}  // namespace her2fast
