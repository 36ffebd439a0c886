#include "label_table.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace her2fast {

LabelTable label_table(const std::int32_t* labels, std::ptrdiff_t h, std::ptrdiff_t w, std::int64_t min_px,
                       std::int64_t max_label, std::int32_t* out) {
  if (labels == nullptr || out == nullptr) throw std::invalid_argument("label_table: null pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("label_table: image must not be empty, got " + std::to_string(h) + "x" +
                                std::to_string(w));
  const std::ptrdiff_t n_px = h * w;
  std::int32_t top = 0;
  for (std::ptrdiff_t i = 0; i < n_px; ++i) {
    const std::int32_t v = labels[i];
    if (v < 0)
      throw std::invalid_argument("label_table: labels must be >= 0, got " + std::to_string(v) + " at pixel " +
                                  std::to_string(i));
    top = std::max(top, v);
  }
  if (top > max_label)
    throw std::invalid_argument("label_table: largest label " + std::to_string(top) + " exceeds " +
                                std::to_string(max_label));
  std::vector<std::int64_t> pixels(static_cast<std::size_t>(top) + 1, 0);
  for (std::ptrdiff_t i = 0; i < n_px; ++i) ++pixels[static_cast<std::size_t>(labels[i])];
  const std::int64_t keep_from = std::max<std::int64_t>(min_px, 1);
  std::vector<std::int32_t> lut(static_cast<std::size_t>(top) + 1, 0);
  LabelTable t;
  for (std::int32_t v = 1; v <= top; ++v)
    if (pixels[static_cast<std::size_t>(v)] >= keep_from) {
      lut[static_cast<std::size_t>(v)] = ++t.n;
      t.count.push_back(pixels[static_cast<std::size_t>(v)]);
    }
  t.sum_x.assign(static_cast<std::size_t>(t.n), 0);
  t.sum_y.assign(static_cast<std::size_t>(t.n), 0);
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const std::int32_t* row = labels + y * w;
    std::int32_t* dst = out + y * w;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      const std::int32_t k = lut[static_cast<std::size_t>(row[x])];
      dst[x] = k;
      if (k > 0) {
        t.sum_x[static_cast<std::size_t>(k - 1)] += x;
        t.sum_y[static_cast<std::size_t>(k - 1)] += y;
      }
    }
  }
  return t;
}

}  // namespace her2fast
