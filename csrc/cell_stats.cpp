#include "cell_stats.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "simd_dispatch.hpp"

namespace her2fast {

HER2FAST_HOT
void cell_landscape(const float* prob, const float* od, std::ptrdiff_t n, float threshold, float half_threshold,
                    float od_weight, float stain_cap, float* land, std::uint8_t* mask) {
  if (prob == nullptr || od == nullptr || land == nullptr || mask == nullptr)
    throw std::invalid_argument("cell_landscape: null pointer");
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float p = prob[i];
    float s = std::max(od[i], 0.0f);
    s = s / (s + 1.0f);
    s = s * od_weight;
    const bool on = p >= threshold;
    const float off = half_threshold * (p / threshold + std::min(s, stain_cap));
    land[i] = on ? p + s : off;
    mask[i] = on ? 1 : 0;
  }
}

void region_max_dist2(const std::int32_t* regions, std::ptrdiff_t h, std::ptrdiff_t w, std::int32_t m,
                      const std::int32_t* region_ids, const std::int32_t* centre_base, const double* centre_frac,
                      double* out) {
  if (regions == nullptr ||
      (m > 0 && (out == nullptr || region_ids == nullptr || centre_base == nullptr || centre_frac == nullptr)))
    throw std::invalid_argument("region_max_dist2: null pointer");
  if (h < 0 || w < 0 || m < 0) throw std::invalid_argument("region_max_dist2: negative size");
  const std::ptrdiff_t n = h * w;
  std::int32_t top = -1;
  for (std::ptrdiff_t i = 0; i < n; ++i) top = std::max(top, regions[i]);
  // region -> row (the last listing wins, as NumPy's fancy assignment); -1: not listed
  std::vector<std::int32_t> row(static_cast<std::size_t>(top) + 1, -1);
  for (std::int32_t i = 0; i < m; ++i) {
    const std::int32_t r = region_ids[i];
    if (r < 0) throw std::invalid_argument("region_max_dist2: region id " + std::to_string(r) + " is negative");
    if (r <= top) row[static_cast<std::size_t>(r)] = i;
  }
  if (m > 0) std::fill(out, out + m, 0.0);
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const std::int32_t* line = regions + y * w;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      const std::int32_t r = line[x];
      if (r < 0) continue;
      const std::int32_t k = row[static_cast<std::size_t>(r)];
      if (k < 0) continue;
      const double dx = static_cast<double>(x - centre_base[2 * k]) - centre_frac[2 * k];
      const double dy = static_cast<double>(y - centre_base[2 * k + 1]) - centre_frac[2 * k + 1];
      const double d2 = dx * dx + dy * dy;
      if (d2 > out[k]) out[k] = d2;
    }
  }
}

void label_means(const std::int32_t* labels, const float* values, const std::uint8_t* exclude,
                 const std::int32_t* exclude_labels, std::ptrdiff_t n, std::int32_t n_labels, double* mean) {
  if (labels == nullptr || values == nullptr || (n_labels > 0 && mean == nullptr))
    throw std::invalid_argument("label_means: null pointer");
  if (n_labels < 0) throw std::invalid_argument("label_means: n_labels must be >= 0");
  std::vector<double> total(static_cast<std::size_t>(n_labels) + 1, 0.0);
  std::vector<std::int64_t> count(static_cast<std::size_t>(n_labels) + 1, 0);
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const std::int32_t l = labels[i];
    if (l <= 0 || (exclude != nullptr && exclude[i]) || (exclude_labels != nullptr && exclude_labels[i] != 0)) continue;
    if (l > n_labels)
      throw std::invalid_argument("label_means: label " + std::to_string(l) + " at pixel " + std::to_string(i) +
                                  " is above n_labels = " + std::to_string(n_labels));
    total[static_cast<std::size_t>(l)] += static_cast<double>(values[i]);
    ++count[static_cast<std::size_t>(l)];
  }
  for (std::int32_t l = 1; l <= n_labels; ++l) {
    const auto c = count[static_cast<std::size_t>(l)];
    mean[l - 1] = c > 0 ? total[static_cast<std::size_t>(l)] / static_cast<double>(c) : 0.0;
  }
}

}  // namespace her2fast
