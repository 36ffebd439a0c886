#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "watershed.hpp"

using her2fast::seeded_watershed;

namespace {
constexpr float kNoBarrier = std::numeric_limits<float>::infinity();
}

TEST_CASE("watershed: two seeds on a flat image split it in the middle (FIFO ties)") {
  const int h = 1, w = 10;
  std::vector<float> elev(w, 0.0f);
  std::vector<std::int32_t> markers(w, 0), out(w);
  markers[0] = 1;
  markers[9] = 2;
  seeded_watershed(elev.data(), h, w, markers.data(), 2, nullptr, kNoBarrier, -1.0, nullptr, nullptr, false,
                   out.data());
  CHECK(out == std::vector<std::int32_t>{1, 1, 1, 1, 1, 2, 2, 2, 2, 2});
}

TEST_CASE("watershed: a ridge separates basins; the barrier keeps a flood from crossing a membrane") {
  // Row: seed 1 at x=1, ridge (membrane) at x=5, nothing on the right.
  const int h = 1, w = 10;
  std::vector<float> elev(w, 0.0f);
  elev[5] = 1.0f;
  std::vector<std::int32_t> markers(w, 0), out(w);
  markers[1] = 1;
  seeded_watershed(elev.data(), h, w, markers.data(), 1, nullptr, kNoBarrier, -1.0, nullptr, nullptr, false,
                   out.data());
  for (int x = 0; x < w; ++x) CHECK(out[x] == 1);  // no barrier: floods everything
  seeded_watershed(elev.data(), h, w, markers.data(), 1, nullptr, 0.5f, -1.0, nullptr, nullptr, false, out.data());
  CHECK(out == std::vector<std::int32_t>{1, 1, 1, 1, 1, 1, 0, 0, 0, 0});  // climbs the membrane, stops there
}

TEST_CASE("watershed: climb gives a cliff's ridge pixel to the flood that climbed to it") {
  // b's seed at x = 0 on flat ground, a cliff up to 2.0 at x = 3, a's gentle slope down to its seed at x = 9.
  const int h = 1, w = 10;
  std::vector<float> elev = {0.0f, 0.0f, 0.0f, 2.0f, 1.6f, 1.2f, 0.8f, 0.4f, 0.0f, 0.0f};
  std::vector<std::int32_t> markers(w, 0), out(w);
  markers[0] = 1;
  markers[9] = 2;
  seeded_watershed(elev.data(), h, w, markers.data(), 2, nullptr, kNoBarrier, -1.0, nullptr, nullptr, false,
                   out.data());
  CHECK(out == std::vector<std::int32_t>{1, 1, 1, 1, 2, 2, 2, 2, 2, 2});  // first touch wins (scikit-image)
  seeded_watershed(elev.data(), h, w, markers.data(), 2, nullptr, kNoBarrier, -1.0, nullptr, nullptr, true, out.data());
  CHECK(out == std::vector<std::int32_t>{1, 1, 1, 2, 2, 2, 2, 2, 2, 2});
  // A symmetric ridge is not stolen (equal ground on both sides): first touch keeps it.
  std::vector<float> sym = {0.0f, 0.5f, 1.0f, 2.0f, 1.0f, 0.5f, 0.0f};
  std::vector<std::int32_t> mk2 = {1, 0, 0, 0, 0, 0, 2}, out2(7);
  seeded_watershed(sym.data(), 1, 7, mk2.data(), 2, nullptr, kNoBarrier, -1.0, nullptr, nullptr, true, out2.data());
  CHECK(out2 == std::vector<std::int32_t>{1, 1, 1, 1, 2, 2, 2});
}

TEST_CASE("watershed: max_radius limits a label to a disk around its centre") {
  const int h = 21, w = 21;
  std::vector<float> elev(h * w, 0.0f);
  std::vector<std::int32_t> markers(h * w, 0), out(h * w);
  markers[10 * w + 10] = 1;
  std::vector<std::int32_t> base = {0, 0, 10, 10};
  std::vector<double> frac = {0, 0, 0, 0};
  seeded_watershed(elev.data(), h, w, markers.data(), 1, nullptr, kNoBarrier, 5.0, base.data(), frac.data(), false,
                   out.data());
  int count = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int d2 = (x - 10) * (x - 10) + (y - 10) * (y - 10);
      CHECK(out[y * w + x] == (d2 <= 25 ? 1 : 0));
      count += out[y * w + x];
    }
  CHECK(count == 81);  // lattice points in a disk of radius 5
}

TEST_CASE("watershed: the mask excludes pixels; translation moves the result") {
  const int h = 8, w = 12;
  std::vector<float> elev(h * w);
  for (int i = 0; i < h * w; ++i) elev[i] = static_cast<float>((i * 7919) % 31) / 31.0f;
  std::vector<std::int32_t> markers(h * w, 0), out(h * w);
  std::vector<std::uint8_t> mask(h * w, 1);
  for (int y = 0; y < h; ++y) mask[y * w + 6] = 0;  // a wall
  markers[1 * w + 1] = 1;
  seeded_watershed(elev.data(), h, w, markers.data(), 1, mask.data(), kNoBarrier, -1.0, nullptr, nullptr, false,
                   out.data());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) CHECK(out[y * w + x] == (x < 6 ? 1 : 0));
}

TEST_CASE("watershed: invalid arguments throw") {
  std::vector<float> elev(4, 0.0f);
  std::vector<std::int32_t> markers(4, 0), out(4);
  CHECK_THROWS_AS(seeded_watershed(elev.data(), 0, 2, markers.data(), 0, nullptr, kNoBarrier, -1.0, nullptr, nullptr,
                                   false, out.data()),
                  std::invalid_argument);
  markers[0] = 3;
  CHECK_THROWS_AS(seeded_watershed(elev.data(), 2, 2, markers.data(), 2, nullptr, kNoBarrier, -1.0, nullptr, nullptr,
                                   false, out.data()),
                  std::invalid_argument);
  markers[0] = 1;
  CHECK_THROWS_AS(seeded_watershed(elev.data(), 2, 2, markers.data(), 1, nullptr, kNoBarrier, 3.0, nullptr, nullptr,
                                   false, out.data()),
                  std::invalid_argument);
  elev[2] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(seeded_watershed(elev.data(), 2, 2, markers.data(), 1, nullptr, kNoBarrier, -1.0, nullptr, nullptr,
                                   false, out.data()),
                  std::invalid_argument);
}
