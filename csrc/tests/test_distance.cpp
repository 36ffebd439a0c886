#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "distance.hpp"

using her2fast::distance_transform_edt;

namespace {
// The definition: the distance to the nearest zero pixel, by brute force.
std::vector<float> brute(const std::vector<std::uint8_t>& m, int h, int w) {
  std::vector<float> out(m.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      if (!m[y * w + x]) {
        out[y * w + x] = 0.0f;
        continue;
      }
      double best = std::numeric_limits<double>::infinity();
      for (int yy = 0; yy < h; ++yy)
        for (int xx = 0; xx < w; ++xx)
          if (!m[yy * w + xx]) best = std::min(best, double(yy - y) * (yy - y) + double(xx - x) * (xx - x));
      out[y * w + x] = static_cast<float>(std::sqrt(best));
    }
  return out;
}
}  // namespace

TEST_CASE("distance_transform_edt: a single zero pixel gives the distance to it") {
  const int h = 5, w = 7;
  std::vector<std::uint8_t> m(h * w, 1);
  m[2 * w + 3] = 0;
  std::vector<float> out(h * w);
  distance_transform_edt(m.data(), h, w, out.data());
  CHECK(out[2 * w + 3] == 0.0f);
  CHECK(out[2 * w + 4] == 1.0f);
  CHECK(out[0 * w + 0] == static_cast<float>(std::sqrt(4.0 + 9.0)));
  CHECK(out[4 * w + 6] == static_cast<float>(std::sqrt(4.0 + 9.0)));
}

TEST_CASE("distance_transform_edt: equals brute force on random masks") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 23), w = 1 + static_cast<int>(rng() % 23);
    const double p = (rng() % 100) / 100.0;
    std::vector<std::uint8_t> m(h * w);
    bool zero = false;
    for (auto& v : m) {
      v = std::uniform_real_distribution<double>(0, 1)(rng) < p ? 1 : 0;
      zero |= v == 0;
    }
    if (!zero) m[rng() % m.size()] = 0;
    std::vector<float> out(h * w);
    distance_transform_edt(m.data(), h, w, out.data());
    CHECK(out == brute(m, h, w));
  }
}

TEST_CASE("distance_transform_edt: invalid arguments throw") {
  std::vector<std::uint8_t> ones(12, 1);
  std::vector<float> out(12);
  CHECK_THROWS_AS(distance_transform_edt(ones.data(), 3, 4, out.data()), std::invalid_argument);
  CHECK_THROWS_AS(distance_transform_edt(ones.data(), 0, 4, out.data()), std::invalid_argument);
  CHECK_THROWS_AS(distance_transform_edt(nullptr, 3, 4, out.data()), std::invalid_argument);
}
