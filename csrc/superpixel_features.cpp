#include "superpixel_features.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "lbp.hpp"

namespace her2fast {

void colour_bins(std::uint8_t r, std::uint8_t g, std::uint8_t b, std::uint8_t out[7]) {
  const int mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
  int hue = 0;
  if (d > 0) {
    int h6;
    if (mx == r) {
      h6 = g - b;
      if (h6 < 0) h6 += 6 * d;
    } else if (mx == g) {
      h6 = 2 * d + (b - r);
    } else {
      h6 = 4 * d + (r - g);
    }
    hue = (32 * h6) / (6 * d);
  }
  out[0] = static_cast<std::uint8_t>(r >> 3);
  out[1] = static_cast<std::uint8_t>(g >> 3);
  out[2] = static_cast<std::uint8_t>(b >> 3);
  out[3] = static_cast<std::uint8_t>(hue);
  out[4] = static_cast<std::uint8_t>((32 * d) / (mx + 1));
  out[5] = static_cast<std::uint8_t>(mx >> 3);
  out[6] = static_cast<std::uint8_t>(grey_level(r, g, b) >> 3);
}

void superpixel_features(const std::uint8_t* rgb, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t row_stride,
                         const std::int32_t* labels, std::ptrdiff_t label_stride, std::int32_t n_labels, int P,
                         double R, double* features) {
  if (rgb == nullptr || labels == nullptr || features == nullptr)
    throw std::invalid_argument("superpixel_features: null pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("superpixel_features: image must not be empty, got " + std::to_string(h) + "x" +
                                std::to_string(w));
  if (row_stride < 3 * w || label_stride < w)
    throw std::invalid_argument("superpixel_features: row or label stride smaller than the width");
  if (n_labels < 0)
    throw std::invalid_argument("superpixel_features: n_labels must be >= 0, got " + std::to_string(n_labels));
  if (P < 1 || P > kLbpMaxPoints)
    throw std::invalid_argument("superpixel_features: P must be in 1.." + std::to_string(kLbpMaxPoints) + ", got " +
                                std::to_string(P));

  const std::size_t nz = static_cast<std::size_t>(h * w);
  std::vector<std::uint8_t> grey(nz), codes(nz);
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const std::uint8_t* row = rgb + y * row_stride;
    std::uint8_t* g = grey.data() + y * w;
    for (std::ptrdiff_t x = 0; x < w; ++x) g[x] = grey_level(row[3 * x], row[3 * x + 1], row[3 * x + 2]);
  }
  lbp_uniform(grey.data(), h, w, w, P, R, codes.data(), w);

  const int n_lbp = P + 2;
  const int f = superpixel_feature_count(P);
  const std::size_t stride_k = static_cast<std::size_t>(kColourBins + n_lbp);
  std::vector<std::uint32_t> counts(static_cast<std::size_t>(n_labels) * stride_k, 0u);
  std::vector<std::uint32_t> sizes(static_cast<std::size_t>(n_labels), 0u);
  std::uint8_t bins[7];
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const std::uint8_t* row = rgb + y * row_stride;
    const std::int32_t* lr = labels + y * label_stride;
    const std::uint8_t* code = codes.data() + y * w;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      const std::int32_t k = lr[x];
      if (k < 0 || k >= n_labels) {
        if (k == -1) continue;
        throw std::invalid_argument("superpixel_features: label " + std::to_string(k) + " at (" + std::to_string(y) +
                                    ", " + std::to_string(x) + ") outside -1.." + std::to_string(n_labels - 1));
      }
      colour_bins(row[3 * x], row[3 * x + 1], row[3 * x + 2], bins);
      std::uint32_t* c = counts.data() + static_cast<std::size_t>(k) * stride_k;
      for (int ch = 0; ch < 7; ++ch) ++c[ch * kColourChannelBins + bins[ch]];
      ++c[kColourBins + code[x]];
      ++sizes[static_cast<std::size_t>(k)];
    }
  }
  for (std::int32_t k = 0; k < n_labels; ++k) {
    double* out = features + static_cast<std::size_t>(k) * static_cast<std::size_t>(f);
    const std::uint32_t* c = counts.data() + static_cast<std::size_t>(k) * stride_k;
    const std::uint32_t n = sizes[static_cast<std::size_t>(k)];
    for (std::size_t j = 0; j < stride_k; ++j) out[j] = n ? static_cast<double>(c[j]) / static_cast<double>(n) : 0.0;
    out[stride_k] = static_cast<double>(n);
  }
}

}  // namespace her2fast
