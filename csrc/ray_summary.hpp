// Per-cell summaries for her2fast.stages.cells.measure_tile, each one pass where NumPy built several
// temporaries: ray_summary (the completeness with narrow gaps closed and the lower medians of the
// covered rays' peak OD and run length, over the (cells x rays) tables: rolls, masks, two sorts) and
// label_sums (pixel counts and coordinate sums per label: bincounts over index maps). Every result
// equals the NumPy formulation (tests/test_cells_measure.py) exactly.
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// For m cells with r rays each (row-major m x r float32 tables):
/// - covered(i, k) = run(i, k) > 0; n_cov[i] = covered rays;
/// - tolerant coverage t(i, k) = run_tol(i, k) > 0 and n_cov[i] > 0 (run_tol null: t = covered);
/// - completeness[i] = (number of rays of t with gaps closed) / r, where an uncovered ray is closed when
///   p + q - 1 <= gap, p (q) the smallest k in 1..gap with t(i, k' - k) (t(i, k' + k)) circularly, else r + 1
///   (gap < 1: nothing is closed);
/// - od_median[i], run_median[i] = element (n_cov - 1) / 2 of the sorted peak / run values of the covered
///   rays (the lower median), 0 for a cell without covered rays.
void ray_summary(const float* run, const float* peak, const float* run_tol, std::ptrdiff_t m, std::ptrdiff_t r,
                 std::int64_t gap, double* completeness, float* od_median, float* run_median, std::int64_t* n_cov);

/// For each label l in 0..n_labels - 1 of `labels` (h x w int32; other values are ignored): its pixel
/// count, and the sums of its pixels' column (x) and row (y) indices, as exact integers.
void label_sums(const std::int32_t* labels, std::ptrdiff_t h, std::ptrdiff_t w, std::int32_t n_labels,
                std::int64_t* count, std::int64_t* sum_x, std::int64_t* sum_y);

}  // namespace her2fast
