#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "reconstruct.hpp"

using her2fast::reconstruct_dilation;

namespace {
// The definition: repeat J = min(dilate3x3(J), mask) until nothing changes.
std::vector<float> reference(const std::vector<float>& marker, const std::vector<float>& mask, int h, int w) {
  std::vector<float> J = marker, next(J.size());
  for (bool changed = true; changed;) {
    changed = false;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        float m = J[y * w + x];
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            const int yy = y + dy, xx = x + dx;
            if (yy >= 0 && yy < h && xx >= 0 && xx < w) m = std::max(m, J[yy * w + xx]);
          }
        next[y * w + x] = std::min(m, mask[y * w + x]);
        changed |= next[y * w + x] != J[y * w + x];
      }
    J.swap(next);
  }
  return J;
}
}  // namespace

TEST_CASE("reconstruct: a marker under one of two peaks fills that peak's hill only") {
  // mask: two hills separated by a valley at 0; the marker touches the left hill only.
  const int h = 1, w = 9;
  std::vector<float> mask = {0, 1, 3, 1, 0, 2, 4, 2, 0};
  std::vector<float> marker = {0, 0, 2, 0, 0, 0, 0, 0, 0}, out(w);
  reconstruct_dilation(marker.data(), mask.data(), h, w, out.data());
  CHECK(out == std::vector<float>{0, 1, 2, 1, 0, 0, 0, 0, 0});
}

TEST_CASE("reconstruct: equals iterated geodesic dilation on random images (plateaus, ties, 1xN, Nx1)") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 23), w = 1 + static_cast<int>(rng() % 29);
    const int levels = 2 + static_cast<int>(rng() % 9);  // few levels: many ties and plateaus
    std::vector<float> mask(h * w), marker(h * w), out(h * w);
    for (int i = 0; i < h * w; ++i) {
      mask[i] = static_cast<float>(rng() % levels) * 0.5f;
      marker[i] = (rng() % 4 == 0) ? mask[i] : std::min(mask[i], static_cast<float>(rng() % levels) * 0.25f - 1.0f);
    }
    reconstruct_dilation(marker.data(), mask.data(), h, w, out.data());
    CHECK(out == reference(marker, mask, h, w));
    // in place (out aliases marker)
    std::vector<float> inplace = marker;
    reconstruct_dilation(inplace.data(), mask.data(), h, w, inplace.data());
    CHECK(inplace == out);
  }
}

TEST_CASE("reconstruct: a marker above the mask, NaN or an empty image is refused") {
  std::vector<float> mask = {0, 1}, marker = {0, 2}, out(2);
  CHECK_THROWS_AS(reconstruct_dilation(marker.data(), mask.data(), 1, 2, out.data()), std::invalid_argument);
  marker = {0, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_AS(reconstruct_dilation(marker.data(), mask.data(), 1, 2, out.data()), std::invalid_argument);
  CHECK_THROWS_AS(reconstruct_dilation(marker.data(), mask.data(), 0, 2, out.data()), std::invalid_argument);
}

TEST_CASE("h_maxima: maxima at least `height` above their surroundings, empty when the range is smaller") {
  using her2fast::h_maxima;
  // peaks of heights 3 (x = 1) and 1 (x = 4, x = 7: a plateau of two pixels)
  const std::vector<float> img = {0, 3, 0, 0, 1, 0, 0, 1, 1, 0};
  std::vector<std::uint8_t> out(img.size(), 9);
  h_maxima(img.data(), 1, static_cast<std::ptrdiff_t>(img.size()), 2.0, out.data());
  CHECK(out == std::vector<std::uint8_t>{0, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  h_maxima(img.data(), 1, static_cast<std::ptrdiff_t>(img.size()), 1.0, out.data());
  CHECK(out == std::vector<std::uint8_t>{0, 1, 0, 0, 1, 0, 0, 1, 1, 0});
  h_maxima(img.data(), 1, static_cast<std::ptrdiff_t>(img.size()), 3.5, out.data());
  CHECK(std::count(out.begin(), out.end(), 0) == static_cast<long>(img.size()));
  CHECK_THROWS_AS(h_maxima(img.data(), 1, 10, 0.0, out.data()), std::invalid_argument);
  std::vector<float> bad = {0, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_AS(h_maxima(bad.data(), 1, 2, 1.0, out.data()), std::invalid_argument);
}
