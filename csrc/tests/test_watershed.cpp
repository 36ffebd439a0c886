#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <random>
#include <stdexcept>
#include <tuple>
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

namespace {

// The flood as documented in watershed.hpp, written plainly: one binary heap of (elevation, age,
// pixel), bounds and mask checked per neighbour. The kernel must give exactly its labels.
std::vector<std::int32_t> reference_flood(const std::vector<float>& elev, int h, int w,
                                          const std::vector<std::int32_t>& markers, const std::uint8_t* mask,
                                          float barrier, double max_radius, const std::vector<std::int32_t>& base,
                                          const std::vector<double>& frac, bool climb, int connectivity) {
  using Entry = std::tuple<float, std::uint32_t, int>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  std::vector<std::int32_t> label(markers);
  std::vector<char> seed(elev.size()), done(elev.size());
  std::vector<float> from(elev.size());
  std::uint32_t age = 0;
  for (int p = 0; p < h * w; ++p)
    if (markers[p] > 0) {
      seed[p] = 1;
      heap.emplace(elev[p] + 0.0f, age++, p);
    }
  const int dys[8] = {-1, 0, 0, 1, -1, -1, 1, 1}, dxs[8] = {0, -1, 1, 0, -1, 1, -1, 1};
  while (!heap.empty()) {
    const auto [e, a, p] = heap.top();
    (void)a;
    heap.pop();
    const std::int32_t lab = label[p];
    const bool on_barrier = !seed[p] && e >= barrier;
    done[p] = 1;
    const int py = p / w, px = p % w;
    for (int k = 0; k < connectivity; ++k) {
      const int qy = py + dys[k], qx = px + dxs[k];
      if (qy < 0 || qy >= h || qx < 0 || qx >= w) continue;
      const int q = qy * w + qx;
      bool steal = false;
      if (label[q] != 0) {
        if (!climb || label[q] == lab || seed[q] || done[q] || !(e > from[q]) || !(e < elev[q])) continue;
        steal = true;
      }
      if (mask != nullptr && mask[q] == 0) continue;
      if (on_barrier && !(elev[q] >= barrier)) continue;
      if (max_radius >= 0) {
        const double dx = static_cast<double>(qx - base[2 * lab]) - frac[2 * lab];
        const double dy = static_cast<double>(qy - base[2 * lab + 1]) - frac[2 * lab + 1];
        if (dx * dx + dy * dy > max_radius * max_radius) continue;
      }
      label[q] = lab;
      from[q] = e;
      if (!steal) heap.emplace(elev[q] + 0.0f, age++, q);
    }
  }
  return label;
}

}  // namespace

TEST_CASE("watershed: equals the plain priority flood on random inputs (ties, masks, barrier, radius, climb)") {
  std::mt19937 rng(20240611);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (int trial = 0; trial < 400; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 48), w = 1 + static_cast<int>(rng() % 48);
    const int n = h * w;
    std::vector<float> elev(static_cast<std::size_t>(n));
    const int kind = trial % 5;
    for (auto& v : elev) {
      const float u = unit(rng);
      v = kind == 0   ? u                                       // tie-free
          : kind == 1 ? std::floor(u * 6.0f) / 6.0f             // plateaus
          : kind == 2 ? (u - 0.5f) * 2e6f                       // a wide range of keys (three radix passes)
          : kind == 3 ? std::floor(u * 3.0f) - 1.0f             // -1, 0, 1
                      : (rng() % 3 == 0 ? -0.0f : u * 1e-30f);  // -0.0 and +0.0 tie; tiny values
    }
    const int n_labels = 1 + static_cast<int>(rng() % 12);
    std::vector<std::int32_t> markers(static_cast<std::size_t>(n), 0);
    for (int k = 1; k <= n_labels; ++k) markers[rng() % n] = k;
    if (trial % 3 == 0)
      for (int k = 0; k < n / 40; ++k) markers[rng() % n] = 1 + static_cast<int>(rng() % n_labels);
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(n));
    for (auto& m : mask) m = rng() % 100 < 85;
    const bool use_mask = trial % 2 == 1;
    const float barriers[4] = {inf, kind == 2 ? 1e5f : 0.5f, 0.0f, -inf};
    const float barrier = barriers[rng() % 4];
    const double radius = rng() % 2 ? -1.0 : static_cast<double>(rng() % 12);
    std::vector<std::int32_t> base(2 * (n_labels + 1));
    std::vector<double> frac(2 * (n_labels + 1));
    for (int k = 1; k <= n_labels; ++k) {
      base[2 * k] = static_cast<std::int32_t>(rng() % w);
      base[2 * k + 1] = static_cast<std::int32_t>(rng() % h);
      frac[2 * k] = 0.999 * unit(rng);
      frac[2 * k + 1] = 0.999 * unit(rng);
    }
    const bool climb = rng() % 2 == 1;
    const int connectivity = rng() % 2 ? 4 : 8;
    const std::uint8_t* m = use_mask ? mask.data() : nullptr;
    std::vector<std::int32_t> out(static_cast<std::size_t>(n));
    seeded_watershed(elev.data(), h, w, markers.data(), n_labels, m, barrier, radius, base.data(), frac.data(), climb,
                     out.data(), connectivity);
    const auto ref = reference_flood(elev, h, w, markers, m, barrier, radius, base, frac, climb, connectivity);
    INFO("trial " << trial << ": " << h << "x" << w << ", kind " << kind << ", barrier " << barrier << ", radius "
                  << radius << ", climb " << climb << ", connectivity " << connectivity);
    CHECK(out == ref);
  }
}

TEST_CASE("watershed: equals the plain priority flood on a tile-sized smooth landscape with plateaus, twice") {
  // Smooth basins with flat floors and membrane-like ridges, many seeds: long waits in the queue,
  // plateau lists, pits below the current level. The second call reuses the thread's scratch.
  const int h = 300, w = 260, n = h * w;
  std::vector<float> elev(static_cast<std::size_t>(n));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float v = 0.5f + 0.25f * std::sin(0.11f * x) * std::cos(0.07f * y) + 0.2f * std::sin(0.031f * (x + y));
      elev[static_cast<std::size_t>(y * w + x)] = std::max(0.45f, std::round(v * 512.0f) / 512.0f);
    }
  std::mt19937 rng(7);
  const int n_labels = 60;
  std::vector<std::int32_t> markers(static_cast<std::size_t>(n), 0), base(2 * (n_labels + 1));
  std::vector<double> frac(2 * (n_labels + 1), 0.0);
  for (int k = 1; k <= n_labels; ++k) {
    const int p = static_cast<int>(rng() % n);
    markers[p] = k;
    base[2 * k] = p % w;
    base[2 * k + 1] = p / w;
  }
  for (const bool climb : {false, true})
    for (const int connectivity : {4, 8}) {
      std::vector<std::int32_t> out(static_cast<std::size_t>(n));
      for (int call = 0; call < 2; ++call) {
        seeded_watershed(elev.data(), h, w, markers.data(), n_labels, nullptr, 0.8f, 40.0, base.data(), frac.data(),
                         climb, out.data(), connectivity);
        CHECK(out == reference_flood(elev, h, w, markers, nullptr, 0.8f, 40.0, base, frac, climb, connectivity));
      }
    }
}
