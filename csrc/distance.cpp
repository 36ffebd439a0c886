#include "distance.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace her2fast {

void distance_transform_edt(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, float* out) {
  if (mask == nullptr || out == nullptr) throw std::invalid_argument("distance_transform_edt: null pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("distance_transform_edt: image must not be empty, got " + std::to_string(h) + "x" +
                                std::to_string(w));
  if (h > (std::ptrdiff_t{1} << 24) || w > (std::ptrdiff_t{1} << 24) || h * w >= (std::ptrdiff_t{1} << 40))
    throw std::invalid_argument("distance_transform_edt: image too large, " + std::to_string(h) + "x" +
                                std::to_string(w));
  const double inf = std::numeric_limits<double>::infinity();
  // 1. columns: squared distance to the nearest zero in the same column (inf: none)
  std::vector<double> col(static_cast<std::size_t>(h * w));
  bool any_zero = false;
  {
    std::vector<double> run(static_cast<std::size_t>(w), inf);  // distance to the last zero above, per column
    for (std::ptrdiff_t y = 0; y < h; ++y) {
      const std::uint8_t* m = mask + y * w;
      double* c = col.data() + y * w;
      for (std::ptrdiff_t x = 0; x < w; ++x) {
        run[x] = m[x] ? run[x] + 1.0 : 0.0;
        c[x] = run[x];
      }
    }
    std::fill(run.begin(), run.end(), inf);
    for (std::ptrdiff_t y = h - 1; y >= 0; --y) {
      const std::uint8_t* m = mask + y * w;
      double* c = col.data() + y * w;
      for (std::ptrdiff_t x = 0; x < w; ++x) {
        run[x] = m[x] ? run[x] + 1.0 : 0.0;
        const double d = std::min(c[x], run[x]);
        any_zero |= d == 0.0;
        c[x] = d * d;
      }
    }
  }
  if (!any_zero) throw std::invalid_argument("distance_transform_edt: the mask has no zero (background) pixel");
  // 2. rows: lower envelope of the parabolas (x - q)^2 + f(q) over the columns q with finite f
  std::vector<std::ptrdiff_t> v(static_cast<std::size_t>(w));
  std::vector<double> z(static_cast<std::size_t>(w) + 1);
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const double* f = col.data() + y * w;
    float* o = out + y * w;
    std::ptrdiff_t k = -1;
    for (std::ptrdiff_t q = 0; q < w; ++q) {
      if (f[q] == inf) continue;
      const double fq = f[q] + static_cast<double>(q) * static_cast<double>(q);
      double s = -inf;
      while (k >= 0) {
        const std::ptrdiff_t p = v[static_cast<std::size_t>(k)];
        s = (fq - (f[p] + static_cast<double>(p) * static_cast<double>(p))) / (2.0 * static_cast<double>(q - p));
        if (s > z[static_cast<std::size_t>(k)]) break;
        --k;
      }
      ++k;
      v[static_cast<std::size_t>(k)] = q;
      z[static_cast<std::size_t>(k)] = k == 0 ? -inf : s;
      z[static_cast<std::size_t>(k) + 1] = inf;
    }
    // k >= 0 here: a column holding a zero has a finite f in every row, and any_zero holds
    std::ptrdiff_t j = 0;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      while (z[static_cast<std::size_t>(j) + 1] < static_cast<double>(x)) ++j;
      const std::ptrdiff_t p = v[static_cast<std::size_t>(j)];
      const double dx = static_cast<double>(x - p);
      o[x] = static_cast<float>(std::sqrt(dx * dx + f[p]));
    }
  }
}

}  // namespace her2fast
