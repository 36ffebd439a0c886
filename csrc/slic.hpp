// SLIC superpixels: Achanta, Shaji, Smith, Lucchi, Fua & Susstrunk, "SLIC superpixels compared to
// state-of-the-art superpixel methods", IEEE TPAMI 34(11), 2012.
//
//  1. RGB -> CIELAB (sRGB, D65), after the same min-max rescaling of the RGB values that
//     scikit-image's `slic` applies, so `compactness` means what it means there.
//  2. Seeds on a regular grid of step S = sqrt(area / n_segments) (scikit-image's regular_grid:
//     first seed at floor(S/2), step round(S)), each moved to the lowest CIELAB gradient in its
//     3x3 neighbourhood.
//  3. Local k-means in [l a b x y]: each centre scans a 2S x 2S window (+-S) and the distance is
//     ||lab_p - lab_k||^2 + (m / S)^2 ||xy_p - xy_k||^2 (m = compactness); at most max_iter
//     iterations, stopping early when no pixel changes its centre (then the result is a fixed point).
//  4. Connectivity (after Achanta's EnforceLabelConnectivity): each 4-connected component of a
//     label becomes its own superpixel, except components smaller than
//     min_size_factor * area / n_seeds, which join a neighbouring component met earlier in raster
//     order. Unlike Achanta and scikit-image, the largest component of each k-means cluster (its
//     body) is never merged unless it is tiny (< 1/4 of that size), so ragged clusters on textured
//     tissue do not vanish and K stays near n_segments. Labels are 0..K-1 in raster order of first
//     appearance.
// With a mask, only mask pixels take part (S from the mask area, seeds inside the mask) and
// pixels outside the mask get label -1.
//
// Implementation notes (none changes the result of a step above): the k-means sweeps go row by
// row, each row updated by every centre whose window covers it, in centre order (so ties go to the
// lower index, as in a centre-by-centre sweep; each window row in whole vectors of 8 pixels, the
// spatial term of each window column tabled once per iteration and +inf past the window's end, so
// the lanes past it never change), then cut into runs of equal label that feed the
// centre sums while the row is in cache; the runs of the last sweep are reused by step 4. Colour
// sums are float, in 8 lanes fixed by the position in the run and folded in a fixed order; there
// is no FMA contraction, so labels are identical whichever SIMD clone (AVX-512 / AVX2 / baseline)
// runs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

struct SlicParams {
  int n_segments = 100;
  double compactness = 10.0;
  int max_iter = 10;
  bool enforce_connectivity = true;
  double min_size_factor = 0.5;
};

/// SLIC superpixels of an RGB uint8 image: `rgb` has h rows of w pixels (3 interleaved bytes each),
/// rows `row_stride` bytes apart. `mask` (nullable) has h rows of w bytes, nonzero = inside, rows
/// `mask_stride` bytes apart. Writes h x w int32 labels (contiguous) to `labels` and returns the
/// number of superpixels K (labels 0..K-1; -1 outside the mask). Throws std::invalid_argument on
/// bad arguments. Deterministic; no global state (safe to call from several threads at once).
int slic(const std::uint8_t* rgb, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t row_stride,
         const std::uint8_t* mask, std::ptrdiff_t mask_stride, const SlicParams& params, std::int32_t* labels);

/// Makes every label a single 4-connected region (step 4 above). `labels` (h x w, contiguous) holds
/// any int32 values; only pixels where `inside` (h x w) is nonzero take part, the others are left
/// as they are. Returns K; the inside pixels then hold 0..K-1.
int enforce_connectivity(std::int32_t* labels, std::ptrdiff_t h, std::ptrdiff_t w, const std::uint8_t* inside,
                         std::ptrdiff_t min_size);

}  // namespace her2fast
