#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "lbp.hpp"

using her2fast::lbp_uniform;

TEST_CASE("lbp: constant image gives code P in the interior and fewer set bits at the zero-padded border") {
  const int h = 9, w = 11;
  std::vector<std::uint8_t> img(h * w, 100), out(h * w, 255);
  lbp_uniform(img.data(), h, w, w, 8, 1.0, out.data(), w);
  for (int y = 1; y < h - 1; ++y)
    for (int x = 1; x < w - 1; ++x) CHECK(out[y * w + x] == 8);
  // Corner (0,0): neighbours outside read 0 < 100; right (0,1), below (1,0) and diagonal inside -> uniform run.
  CHECK(out[0] <= 8);
  CHECK(out[0] < 8);
}

TEST_CASE("lbp: a single bright pixel is code 0 at its centre and a spot-edge code beside it") {
  const int h = 7, w = 7;
  std::vector<std::uint8_t> img(h * w, 10), out(h * w);
  img[3 * w + 3] = 200;
  lbp_uniform(img.data(), h, w, w, 8, 1.0, out.data(), w);
  CHECK(out[3 * w + 3] == 0);  // every neighbour darker than the centre
  // Left neighbour (3,2): its right neighbour (bit 0) is brighter, all others equal: 8 bits set, uniform.
  CHECK(out[3 * w + 2] == 8);
}

TEST_CASE("lbp: codes lie in 0..P+1 and are invariant to increasing grey maps, for several (P, R)") {
  std::mt19937 rng(7);
  const int h = 33, w = 41;
  std::vector<std::uint8_t> img(h * w), img2(h * w), a(h * w), b(h * w);
  for (auto& v : img) v = static_cast<std::uint8_t>(rng() % 120);
  for (int i = 0; i < h * w; ++i) img2[i] = static_cast<std::uint8_t>(2 * img[i] + 10);  // increasing, no overflow
  for (auto [P, R] : std::vector<std::pair<int, double>>{{8, 1.0}, {16, 2.0}, {4, 1.0}, {24, 3.0}}) {
    lbp_uniform(img.data(), h, w, w, P, R, a.data(), w);
    lbp_uniform(img2.data(), h, w, w, P, R, b.data(), w);
    for (int i = 0; i < h * w; ++i) REQUIRE(a[i] <= P + 1);
    // Interior only: at the border the zero padding is not mapped by the grey map.
    const int m = static_cast<int>(R) + 2;
    for (int y = m; y < h - m; ++y)
      for (int x = m; x < w - m; ++x) CHECK(a[y * w + x] == b[y * w + x]);
  }
}

TEST_CASE("lbp: uint8 and float64 inputs give the same codes") {
  std::mt19937 rng(3);
  const int h = 20, w = 17;
  std::vector<std::uint8_t> img(h * w), a(h * w), b(h * w);
  std::vector<double> imgf(h * w);
  for (int i = 0; i < h * w; ++i) imgf[i] = img[i] = static_cast<std::uint8_t>(rng());
  lbp_uniform(img.data(), h, w, w, 8, 1.5, a.data(), w);
  lbp_uniform(imgf.data(), h, w, w, 8, 1.5, b.data(), w);
  CHECK(a == b);
}

TEST_CASE("lbp: strides are honoured") {
  const int h = 5, w = 6, stride = 9;
  std::vector<std::uint8_t> img(h * stride, 0), packed(h * w), out1(h * 8, 0), out2(h * w);
  std::mt19937 rng(1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) packed[y * w + x] = img[y * stride + x] = static_cast<std::uint8_t>(rng());
  lbp_uniform(img.data(), h, w, stride, 8, 1.0, out1.data(), 8);
  lbp_uniform(packed.data(), h, w, w, 8, 1.0, out2.data(), w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) CHECK(out1[y * 8 + x] == out2[y * w + x]);
}

TEST_CASE("lbp: invalid arguments throw std::invalid_argument naming the value") {
  std::vector<std::uint8_t> img(16, 0), out(16);
  CHECK_THROWS_AS(lbp_uniform(img.data(), 0, 4, 4, 8, 1.0, out.data(), 4), std::invalid_argument);
  CHECK_THROWS_AS(lbp_uniform(img.data(), 4, 4, 3, 8, 1.0, out.data(), 4), std::invalid_argument);
  CHECK_THROWS_AS(lbp_uniform(img.data(), 4, 4, 4, 0, 1.0, out.data(), 4), std::invalid_argument);
  CHECK_THROWS_AS(lbp_uniform(img.data(), 4, 4, 4, 65, 1.0, out.data(), 4), std::invalid_argument);
  CHECK_THROWS_AS(lbp_uniform(img.data(), 4, 4, 4, 8, -1.0, out.data(), 4), std::invalid_argument);
  CHECK_THROWS_AS(lbp_uniform(static_cast<const std::uint8_t*>(nullptr), 4, 4, 4, 8, 1.0, out.data(), 4),
                  std::invalid_argument);
  try {
    lbp_uniform(img.data(), 4, 4, 4, 99, 1.0, out.data(), 4);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("99") != std::string::npos);
  }
}
