#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "skeleton.hpp"

using her2fast::enclosed_regions;
using her2fast::thin_guo_hall;

TEST_CASE("thin: a thick bar becomes a one-pixel line along its middle") {
  const int h = 9, w = 20;
  std::vector<std::uint8_t> img(h * w, 0), out(h * w);
  for (int y = 3; y <= 5; ++y)
    for (int x = 2; x < 18; ++x) img[y * w + x] = 1;
  thin_guo_hall(img.data(), h, w, w, out.data());
  int count = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      count += out[y * w + x];
      if (out[y * w + x]) CHECK(y == 4);  // the middle row
    }
  CHECK(count >= 10);
}

TEST_CASE("thin: a thick ring keeps its hole; enclosed_regions finds one closed region") {
  const int h = 30, w = 30;
  std::vector<std::uint8_t> img(h * w, 0), out(h * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int d2 = (y - 15) * (y - 15) + (x - 15) * (x - 15);
      img[y * w + x] = d2 >= 64 && d2 <= 144;  // radii 8..12
    }
  thin_guo_hall(img.data(), h, w, w, out.data());
  for (int i = 0; i < h * w; ++i) CHECK(out[i] <= img[i]);  // a subset of the input
  std::vector<std::int32_t> labels(h * w);
  const auto table = enclosed_regions(out.data(), h, w, w, labels.data());
  REQUIRE(table.area.size() == 2);  // outside + inside of the loop
  CHECK(table.touches_border[0] == 1);
  CHECK(table.touches_border[1] == 0);
  CHECK(labels[15 * w + 15] == 1);
  CHECK(labels[0] == 0);
}

TEST_CASE("thin: already thin lines and isolated pixels stay; empty stays empty") {
  const int h = 5, w = 5;
  std::vector<std::uint8_t> img(h * w, 0), out(h * w);
  img[2 * w + 2] = 1;
  thin_guo_hall(img.data(), h, w, w, out.data());
  CHECK(out == img);
  std::fill(img.begin(), img.end(), 0);
  thin_guo_hall(img.data(), h, w, w, out.data());
  CHECK(out == img);
  for (int x = 0; x < w; ++x) img[2 * w + x] = 1;  // a line across the image
  thin_guo_hall(img.data(), h, w, w, out.data());
  CHECK(out == img);
}

TEST_CASE("enclosed_regions: an open arc encloses nothing") {
  const int h = 12, w = 12;
  std::vector<std::uint8_t> sk(h * w, 0);
  for (int x = 2; x < 10; ++x) sk[2 * w + x] = 1;
  for (int y = 2; y < 10; ++y) sk[y * w + 2] = 1;
  std::vector<std::int32_t> labels(h * w);
  const auto table = enclosed_regions(sk.data(), h, w, w, labels.data());
  REQUIRE(table.area.size() == 1);
  CHECK(table.touches_border[0] == 1);
  CHECK(table.area[0] == h * w - 15);
}

TEST_CASE("skeleton kernels: invalid arguments throw") {
  std::vector<std::uint8_t> img(4, 0), out(4);
  std::vector<std::int32_t> labels(4);
  CHECK_THROWS_AS(thin_guo_hall(img.data(), 0, 2, 2, out.data()), std::invalid_argument);
  CHECK_THROWS_AS(thin_guo_hall(img.data(), 2, 2, 1, out.data()), std::invalid_argument);
  CHECK_THROWS_AS(enclosed_regions(nullptr, 2, 2, 2, labels.data()), std::invalid_argument);
}
