#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "superpixel_features.hpp"

using her2fast::colour_bins;
using her2fast::superpixel_feature_count;

TEST_CASE("features: colour bins of primary and grey colours") {
  std::uint8_t b[7];
  colour_bins(255, 0, 0, b);  // red: hue 0, full saturation
  CHECK(b[0] == 31);
  CHECK(b[1] == 0);
  CHECK(b[3] == 0);
  CHECK(b[4] == 31);
  CHECK(b[5] == 31);
  colour_bins(0, 255, 0, b);  // green: hue 1/3 of the circle -> bin 10
  CHECK(b[3] == 10);
  colour_bins(0, 0, 255, b);  // blue: hue 2/3 -> bin 21
  CHECK(b[3] == 21);
  colour_bins(128, 128, 128, b);  // grey: no hue, no saturation
  CHECK(b[3] == 0);
  CHECK(b[4] == 0);
  CHECK(b[6] == 16);
  colour_bins(255, 0, 1, b);  // just below a full turn: last hue bin
  CHECK(b[3] == 31);
}

TEST_CASE("features: histograms sum to one per channel, counts are pixel counts, empty labels are zero") {
  const int h = 30, w = 40, P = 8, f = superpixel_feature_count(P);
  std::mt19937 rng(2);
  std::vector<std::uint8_t> img(h * w * 3);
  for (auto& v : img) v = static_cast<std::uint8_t>(rng());
  std::vector<std::int32_t> lab(h * w);
  for (int i = 0; i < h * w; ++i) lab[i] = static_cast<std::int32_t>(rng() % 5) - 1;  // -1..3; label 4 empty
  std::vector<double> feat(5 * f, -1.0);
  her2fast::superpixel_features(img.data(), h, w, 3 * w, lab.data(), w, 5, P, 1.0, feat.data());
  for (int k = 0; k < 4; ++k) {
    int n = 0;
    for (auto v : lab) n += v == k;
    CHECK(feat[k * f + f - 1] == doctest::Approx(n));
    for (int ch = 0; ch < 8; ++ch) {  // 7 colour blocks + the LBP block
      const int lo = ch * 32, hi = ch < 7 ? lo + 32 : lo + P + 2;
      double s = 0;
      for (int j = lo; j < hi; ++j) s += feat[k * f + j];
      CHECK(s == doctest::Approx(1.0));
    }
  }
  for (int j = 0; j < f; ++j) CHECK(feat[4 * f + j] == 0.0);
}

TEST_CASE("features: a label outside -1..n_labels-1 throws") {
  std::vector<std::uint8_t> img(4 * 4 * 3, 0);
  std::vector<std::int32_t> lab(16, 0);
  std::vector<double> feat(superpixel_feature_count(8));
  lab[5] = 1;
  CHECK_THROWS_AS(her2fast::superpixel_features(img.data(), 4, 4, 12, lab.data(), 4, 1, 8, 1.0, feat.data()),
                  std::invalid_argument);
  lab[5] = -2;
  CHECK_THROWS_AS(her2fast::superpixel_features(img.data(), 4, 4, 12, lab.data(), 4, 1, 8, 1.0, feat.data()),
                  std::invalid_argument);
}
