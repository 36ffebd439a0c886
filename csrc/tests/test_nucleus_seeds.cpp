#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <vector>

#include "distance.hpp"
#include "nucleus_seeds.hpp"
#include "reconstruct.hpp"

namespace {
// 8-connected components of a binary mask, labels 1..n (breadth-first).
int label8(const std::vector<std::uint8_t>& m, int h, int w, std::vector<std::int32_t>& lab) {
  lab.assign(m.size(), 0);
  int n = 0;
  std::vector<int> stack;
  for (int i = 0; i < h * w; ++i) {
    if (!m[i] || lab[i]) continue;
    lab[i] = ++n;
    stack.assign(1, i);
    while (!stack.empty()) {
      const int p = stack.back();
      stack.pop_back();
      const int py = p / w, px = p % w;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int y = py + dy, x = px + dx;
          if (y < 0 || y >= h || x < 0 || x >= w || !m[y * w + x] || lab[y * w + x]) continue;
          lab[y * w + x] = n;
          stack.push_back(y * w + x);
        }
    }
  }
  return n;
}
}  // namespace

TEST_CASE("component_distance_maxima equals the whole-image distance transform and h-maxima") {
  std::mt19937 rng(20261129);
  int checked = 0, with_peaks = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int h = 8 + static_cast<int>(rng() % 90), w = 8 + static_cast<int>(rng() % 90);
    std::vector<std::uint8_t> m(static_cast<std::size_t>(h * w), 0);
    const int blobs = static_cast<int>(rng() % 12);
    for (int b = 0; b < blobs; ++b) {  // discs and rectangles, touching and overlapping, at the borders too
      const int cy = static_cast<int>(rng() % h), cx = static_cast<int>(rng() % w),
                r = 1 + static_cast<int>(rng() % 12);
      const bool disc = rng() % 2;
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const int dy = y - cy, dx = x - cx;
          if (disc ? dy * dy + dx * dx <= r * r : (std::abs(dy) <= r && std::abs(dx) <= r / 2 + 1)) m[y * w + x] = 1;
        }
    }
    for (int k = 0; k < h * w / 20; ++k) m[rng() % (h * w)] ^= 1;  // speckle: tiny components and holes
    std::vector<std::int32_t> lab;
    const int n = label8(m, h, w, lab);
    std::vector<std::uint8_t> keep(static_cast<std::size_t>(n) + 1, 0);
    for (int l = 1; l <= n; ++l) keep[l] = rng() % 4 != 0;
    std::vector<std::uint8_t> kept(m.size());
    bool any_out = false;
    for (std::size_t i = 0; i < m.size(); ++i) {
      kept[i] = lab[i] > 0 && keep[lab[i]];
      any_out |= !kept[i];
    }
    if (!any_out) continue;
    for (const double height : {0.5, 0.25, 0.999}) {
      std::vector<float> ref_d(m.size()), d(m.size());
      std::vector<std::uint8_t> ref_p(m.size()), p(m.size());
      her2fast::distance_transform_edt(kept.data(), h, w, ref_d.data());
      her2fast::h_maxima(ref_d.data(), h, w, height, ref_p.data());
      her2fast::component_distance_maxima(lab.data(), h, w, keep.data(), n, height, d.data(), p.data());
      for (std::size_t i = 0; i < m.size(); ++i) {
        REQUIRE(d[i] == ref_d[i]);
        REQUIRE(p[i] == (kept[i] ? ref_p[i] : 0));
        with_peaks += p[i];
      }
      ++checked;
    }
  }
  CHECK(checked > 600);
  CHECK(with_peaks > 1000);
}

TEST_CASE("component_distance_maxima rejects bad input") {
  std::vector<std::int32_t> lab = {0, 1, 1, 2};
  std::vector<std::uint8_t> keep = {0, 1, 1};
  std::vector<float> d(4);
  std::vector<std::uint8_t> p(4);
  CHECK_THROWS_AS(her2fast::component_distance_maxima(lab.data(), 2, 2, keep.data(), 2, 1.0, d.data(), p.data()),
                  std::invalid_argument);  // height >= 1: not equal to the whole image's
  CHECK_THROWS_AS(her2fast::component_distance_maxima(lab.data(), 2, 2, keep.data(), 1, 0.5, d.data(), p.data()),
                  std::invalid_argument);  // label 2 > n_labels
  std::vector<std::int32_t> all = {1, 1, 1, 1};
  CHECK_THROWS_AS(her2fast::component_distance_maxima(all.data(), 2, 2, keep.data(), 1, 0.5, d.data(), p.data()),
                  std::invalid_argument);  // no pixel outside
  her2fast::component_distance_maxima(lab.data(), 2, 2, keep.data(), 2, 0.5, d.data(), p.data());
  CHECK(d[0] == 0.0f);
  CHECK(d[1] == 1.0f);
}
