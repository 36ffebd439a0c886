// label_table: the objects of a label map as consecutive labels, with their pixel counts and the
// exact integer sums of their pixel coordinates (for her2fast.cells: nuclei = cells, exact centres).
//
// Labels with at least `min_px` pixels keep their order and are renumbered 1..n; the others become 0.
// One pass to count, one to relabel and sum: what NumPy did with a lookup table, bincounts and a
// fancy-indexed copy of the tile (~13 ms per 800^2 tile) in ~2 ms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace her2fast {

struct LabelTable {
  std::int32_t n = 0;               ///< objects kept
  std::vector<std::int64_t> count;  ///< (n,) pixels per object
  std::vector<std::int64_t> sum_x;  ///< (n,) sum of the column indices of its pixels
  std::vector<std::int64_t> sum_y;  ///< (n,) sum of the row indices of its pixels
};

/// Relabel `labels` (h x w, contiguous, values >= 0, 0 = background) into `out` (h x w): objects with
/// >= max(min_px, 1) pixels numbered 1..n in increasing order of their input label, others 0.
/// Throws std::invalid_argument for an empty image, a negative label, or a largest label above
/// `max_label` (the caller's bound on the count table's size).
LabelTable label_table(const std::int32_t* labels, std::ptrdiff_t h, std::ptrdiff_t w, std::int64_t min_px,
                       std::int64_t max_label, std::int32_t* out);

}  // namespace her2fast
