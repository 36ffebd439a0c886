#include "ray_summary.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace her2fast {

void ray_summary(const float* run, const float* peak, const float* run_tol, std::ptrdiff_t m, std::ptrdiff_t r,
                 std::int64_t gap, double* completeness, float* od_median, float* run_median, std::int64_t* n_cov) {
  if (m < 0 || r < 1) throw std::invalid_argument("ray_summary: need m >= 0 cells and r >= 1 rays");
  if (m == 0) return;
  if (run == nullptr || peak == nullptr || completeness == nullptr || od_median == nullptr || run_median == nullptr ||
      n_cov == nullptr)
    throw std::invalid_argument("ray_summary: null pointer");
  // beyond r steps the circular search repeats itself: the first hit (if any) is within r
  const std::ptrdiff_t steps = static_cast<std::ptrdiff_t>(std::min<std::int64_t>(std::max<std::int64_t>(gap, 0), r));
  const std::int64_t big = static_cast<std::int64_t>(r) + 1;
  thread_local std::vector<std::uint8_t> t;
  thread_local std::vector<float> vals;
  t.resize(static_cast<std::size_t>(r));
  vals.resize(static_cast<std::size_t>(r));
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    const float* ru = run + i * r;
    const float* pk = peak + i * r;
    std::int64_t nc = 0;
    for (std::ptrdiff_t k = 0; k < r; ++k) nc += ru[k] > 0.0f;
    n_cov[i] = nc;
    const float* tol = run_tol != nullptr ? run_tol + i * r : ru;
    for (std::ptrdiff_t k = 0; k < r; ++k)
      t[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(tol[k] > 0.0f && (run_tol == nullptr || nc > 0));
    std::int64_t closed = 0;
    for (std::ptrdiff_t k = 0; k < r; ++k) {
      if (t[static_cast<std::size_t>(k)]) {
        ++closed;
        continue;
      }
      if (gap < 1) continue;
      std::int64_t p = big, q = big;
      for (std::ptrdiff_t s = 1; s <= steps && p == big; ++s)
        if (t[static_cast<std::size_t>(((k - s) % r + r) % r)]) p = s;
      for (std::ptrdiff_t s = 1; s <= steps && q == big; ++s)
        if (t[static_cast<std::size_t>((k + s) % r)]) q = s;
      closed += p + q - 1 <= gap;
    }
    completeness[i] = static_cast<double>(closed) / static_cast<double>(r);
    if (nc == 0) {
      od_median[i] = 0.0f;
      run_median[i] = 0.0f;
      continue;
    }
    const auto mid = static_cast<std::ptrdiff_t>((nc - 1) / 2);
    for (int which = 0; which < 2; ++which) {
      const float* src = which == 0 ? pk : ru;
      std::ptrdiff_t c = 0;
      for (std::ptrdiff_t k = 0; k < r; ++k)
        if (ru[k] > 0.0f) vals[static_cast<std::size_t>(c++)] = src[k];
      std::nth_element(vals.begin(), vals.begin() + mid, vals.begin() + c);
      (which == 0 ? od_median : run_median)[i] = vals[static_cast<std::size_t>(mid)];
    }
  }
}

void label_sums(const std::int32_t* labels, std::ptrdiff_t h, std::ptrdiff_t w, std::int32_t n_labels,
                std::int64_t* count, std::int64_t* sum_x, std::int64_t* sum_y) {
  if (n_labels < 0 || h < 0 || w < 0) throw std::invalid_argument("label_sums: negative size");
  std::fill(count, count + n_labels, 0);
  std::fill(sum_x, sum_x + n_labels, 0);
  std::fill(sum_y, sum_y + n_labels, 0);
  const auto top = static_cast<std::uint32_t>(n_labels);
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const std::int32_t* row = labels + y * w;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      const auto l = static_cast<std::uint32_t>(row[x]);  // negative labels wrap above top
      if (l >= top) continue;
      ++count[l];
      sum_x[l] += x;
      sum_y[l] += y;
    }
  }
}

}  // namespace her2fast
