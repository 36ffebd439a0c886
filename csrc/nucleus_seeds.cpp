#include "nucleus_seeds.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "distance.hpp"
#include "reconstruct.hpp"

namespace her2fast {

void component_distance_maxima(const std::int32_t* labels, std::ptrdiff_t h, std::ptrdiff_t w, const std::uint8_t* keep,
                               std::int32_t n_labels, double height, float* dist, std::uint8_t* peaks) {
  if (labels == nullptr || keep == nullptr || dist == nullptr || peaks == nullptr)
    throw std::invalid_argument("component_distance_maxima: null pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("component_distance_maxima: empty image " + std::to_string(h) + "x" +
                                std::to_string(w));
  if (n_labels < 0) throw std::invalid_argument("component_distance_maxima: n_labels must be >= 0");
  if (!(height > 0.0 && height < 1.0))
    throw std::invalid_argument("component_distance_maxima: height must be in (0, 1), got " + std::to_string(height) +
                                " (the per-component h-maxima equal the whole image's only below one pixel)");
  const std::ptrdiff_t n = h * w;
  // bounding boxes of the kept components
  const std::size_t nl = static_cast<std::size_t>(n_labels) + 1;
  std::vector<std::int32_t> x0(nl, static_cast<std::int32_t>(w)), y0(nl, static_cast<std::int32_t>(h)), x1(nl, -1),
      y1(nl, -1);
  std::ptrdiff_t kept_px = 0;
  for (std::ptrdiff_t y = 0; y < h; ++y)
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      const std::int32_t l = labels[y * w + x];
      if (l < 0 || l > n_labels)
        throw std::invalid_argument("component_distance_maxima: label " + std::to_string(l) + " at pixel " +
                                    std::to_string(y * w + x) + " is outside 0.." + std::to_string(n_labels));
      if (l == 0 || !keep[l]) continue;
      ++kept_px;
      const auto xi = static_cast<std::int32_t>(x), yi = static_cast<std::int32_t>(y);
      x0[l] = std::min(x0[l], xi);
      x1[l] = std::max(x1[l], xi);
      y0[l] = std::min(y0[l], yi);
      y1[l] = std::max(y1[l], yi);
    }
  if (kept_px == n) throw std::invalid_argument("component_distance_maxima: the kept components cover the whole image");
  std::fill(dist, dist + n, 0.0f);
  std::fill(peaks, peaks + n, std::uint8_t{0});
  std::vector<std::uint8_t> mask;
  std::vector<float> crop;
  std::vector<std::uint8_t> crop_peaks;
  for (std::int32_t l = 1; l <= n_labels; ++l) {
    if (x1[l] < 0) continue;  // not kept, or no pixel
    const std::ptrdiff_t cx0 = std::max<std::ptrdiff_t>(0, x0[l] - 1), cy0 = std::max<std::ptrdiff_t>(0, y0[l] - 1);
    const std::ptrdiff_t cx1 = std::min<std::ptrdiff_t>(w, x1[l] + 2), cy1 = std::min<std::ptrdiff_t>(h, y1[l] + 2);
    const std::ptrdiff_t ch = cy1 - cy0, cw = cx1 - cx0;
    mask.assign(static_cast<std::size_t>(ch * cw), 0);
    for (std::ptrdiff_t y = 0; y < ch; ++y) {
      const std::int32_t* row = labels + (cy0 + y) * w + cx0;
      for (std::ptrdiff_t x = 0; x < cw; ++x) mask[static_cast<std::size_t>(y * cw + x)] = row[x] == l;
    }
    // a box without a pixel outside C: C fills it, so the box is the whole image (clipped on every
    // side) and C the whole kept mask -- excluded above
    crop.resize(mask.size());
    crop_peaks.resize(mask.size());
    distance_transform_edt(mask.data(), ch, cw, crop.data());
    h_maxima(crop.data(), ch, cw, height, crop_peaks.data());
    for (std::ptrdiff_t y = 0; y < ch; ++y)
      for (std::ptrdiff_t x = 0; x < cw; ++x) {
        const std::size_t i = static_cast<std::size_t>(y * cw + x);
        if (!mask[i]) continue;
        const std::ptrdiff_t o = (cy0 + y) * w + cx0 + x;
        dist[o] = crop[i];
        peaks[o] = crop_peaks[i];
      }
  }
}

}  // namespace her2fast
