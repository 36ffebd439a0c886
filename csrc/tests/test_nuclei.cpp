#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "nuclei.hpp"

using her2fast::fill_holes;
using her2fast::gaussian_smooth;
using her2fast::label8;
using her2fast::NucleiParams;
using her2fast::segment_nuclei;
using her2fast::shift_reduce;

namespace {
std::vector<std::uint8_t> random_mask(std::mt19937& rng, int h, int w, unsigned percent) {
  std::vector<std::uint8_t> m(static_cast<std::size_t>(h * w));
  for (auto& v : m) v = static_cast<std::uint8_t>(rng() % 100 < percent);
  return m;
}

// Union-find labelling, then numbering by the first pixel in raster order (independent of label8's flood).
std::vector<std::int32_t> label8_union_find(const std::vector<std::uint8_t>& m, int h, int w, int& n) {
  std::vector<int> parent(m.size());
  for (std::size_t i = 0; i < m.size(); ++i) parent[i] = static_cast<int>(i);
  auto find = [&](int i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      if (!m[y * w + x]) continue;
      for (int dy = -1; dy <= 0; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          if (dy == 0 && dx >= 0) continue;
          const int yy = y + dy, xx = x + dx;
          if (yy < 0 || xx < 0 || xx >= w || !m[yy * w + xx]) continue;
          parent[find(yy * w + xx)] = find(y * w + x);
        }
    }
  std::vector<std::int32_t> id(m.size(), 0), out(m.size(), 0);
  n = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (!m[i]) continue;
    const int r = find(static_cast<int>(i));
    if (!id[r]) id[r] = ++n;
    out[i] = id[r];
  }
  return out;
}
}  // namespace

TEST_CASE("label8 numbers 8-connected components in raster order of their first pixel") {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 60; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 30), w = 1 + static_cast<int>(rng() % 30);
    const auto m = random_mask(rng, h, w, 20 + static_cast<unsigned>(rng() % 50));
    int n_ref = 0;
    const auto want = label8_union_find(m, h, w, n_ref);
    std::vector<std::int32_t> got(m.size(), -1);
    CHECK(label8(m.data(), h, w, got.data()) == n_ref);
    CHECK(got == want);
  }
}

TEST_CASE("fill_holes fills the background not 4-connected to the border") {
  // a ring with a diagonal-only leak: 4-connected background does not pass a diagonal gap
  const int h = 5, w = 5;
  std::vector<std::uint8_t> m = {0, 0, 0, 0, 0,  //
                                 0, 1, 1, 1, 0,  //
                                 0, 1, 0, 1, 0,  //
                                 0, 1, 1, 0, 0,  //
                                 0, 0, 0, 0, 0};
  std::vector<std::uint8_t> out(m.size());
  fill_holes(m.data(), h, w, out.data());
  CHECK(out[2 * w + 2] == 1);
  CHECK(out[3 * w + 3] == 0);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 40; ++trial) {
    const int hh = 1 + static_cast<int>(rng() % 25), ww = 1 + static_cast<int>(rng() % 25);
    const auto r = random_mask(rng, hh, ww, 50);
    std::vector<std::uint8_t> got(r.size());
    fill_holes(r.data(), hh, ww, got.data());
    // reference: iterate "background reached from the border" to a fixed point
    std::vector<std::uint8_t> reach(r.size(), 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (int y = 0; y < hh; ++y)
        for (int x = 0; x < ww; ++x) {
          const int i = y * ww + x;
          if (r[i] || reach[i]) continue;
          const bool edge = y == 0 || x == 0 || y == hh - 1 || x == ww - 1;
          if (edge || (y > 0 && reach[i - ww]) || (x > 0 && reach[i - 1]) || (x + 1 < ww && reach[i + 1]) ||
              (y + 1 < hh && reach[i + ww])) {
            reach[i] = 1;
            changed = true;
          }
        }
    }
    for (std::size_t i = 0; i < r.size(); ++i) CHECK(got[i] == static_cast<std::uint8_t>(r[i] || !reach[i]));
  }
}

TEST_CASE("shift_reduce equals the AND / OR over every offset, outside = 0") {
  std::mt19937 rng(7);
  const std::vector<std::uint8_t> disk2 = {0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0};
  const std::vector<std::uint8_t> lopsided = {0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0};  // 3 x 5
  for (int trial = 0; trial < 40; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 20), w = 1 + static_cast<int>(rng() % 20);
    const auto m = random_mask(rng, h, w, 30 + static_cast<unsigned>(rng() % 60));
    for (int which = 0; which < 2; ++which) {
      const auto& st = which == 0 ? disk2 : lopsided;
      const int sh = which == 0 ? 5 : 3, sw = 5;
      for (bool erode : {true, false}) {
        std::vector<std::uint8_t> got(m.size());
        shift_reduce(m.data(), h, w, st.data(), sh, sw, erode, got.data());
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x) {
            bool acc = erode;
            for (int i = 0; i < sh; ++i)
              for (int j = 0; j < sw; ++j) {
                if (!st[i * sw + j]) continue;
                const int yy = y + i - sh / 2, xx = x + j - sw / 2;
                const bool v = yy >= 0 && yy < h && xx >= 0 && xx < w && m[yy * w + xx];
                acc = erode ? (acc && v) : (acc || v);
              }
            CHECK(got[y * w + x] == static_cast<std::uint8_t>(acc));
          }
      }
    }
  }
  std::vector<std::uint8_t> m(4, 1), out(4), two_runs = {1, 0, 1, 0, 0, 0, 0, 0, 0};
  CHECK_THROWS_AS(shift_reduce(m.data(), 2, 2, two_runs.data(), 3, 3, true, out.data()), std::invalid_argument);
  CHECK_THROWS_AS(shift_reduce(m.data(), 2, 2, two_runs.data(), 2, 2, true, out.data()), std::invalid_argument);
}

TEST_CASE("gaussian_smooth: SciPy's symmetric correlation along rows then columns, edge values repeated") {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1.0f, 2.0f);
  const std::vector<double> wt = {0.05, 0.25, 0.4, 0.25, 0.05};
  const int r = 2;
  for (int trial = 0; trial < 20; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 12), w = 1 + static_cast<int>(rng() % 12);
    std::vector<float> img(static_cast<std::size_t>(h * w));
    for (auto& v : img) v = u(rng);
    std::vector<float> got(img.size());
    gaussian_smooth(img.data(), h, w, wt.data(), r, got.data());
    auto at = [&](const std::vector<float>& a, int y, int x) {
      y = y < 0 ? 0 : (y >= h ? h - 1 : y);
      x = x < 0 ? 0 : (x >= w ? w - 1 : x);
      return static_cast<double>(a[static_cast<std::size_t>(y * w + x)]);
    };
    std::vector<float> mid(img.size());
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        double v = at(img, y, x) * wt[r];
        for (int k = r; k >= 1; --k) v += (at(img, y - k, x) + at(img, y + k, x)) * wt[r - k];
        mid[static_cast<std::size_t>(y * w + x)] = static_cast<float>(v);
      }
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        double v = at(mid, y, x) * wt[r];
        for (int k = r; k >= 1; --k) v += (at(mid, y, x - k) + at(mid, y, x + k)) * wt[r - k];
        CHECK(got[static_cast<std::size_t>(y * w + x)] == static_cast<float>(v));
      }
  }
}

TEST_CASE("segment_nuclei: two touching discs are split, a map that is nucleus everywhere is handed back") {
  const int h = 40, w = 60;
  std::vector<float> img(static_cast<std::size_t>(h * w), 0.0f);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (std::hypot(y - 20.0, x - 20.0) < 9.0 || std::hypot(y - 20.0, x - 35.0) < 9.0) img[y * w + x] = 0.5f;
  const std::vector<std::uint8_t> disk2 = {0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0};
  NucleiParams p;
  p.threshold = 0.27f;
  p.opening = disk2.data();
  p.opening_side = 5;
  p.min_px = 32.0;
  p.depth = 0.5;
  p.seed_disk = disk2.data();
  p.seed_side = 5;
  std::vector<std::int32_t> lab(img.size(), -1);
  CHECK(segment_nuclei(img.data(), h, w, nullptr, p, lab.data()) == 2);
  CHECK(lab[20 * w + 20] != lab[20 * w + 35]);
  CHECK(lab[20 * w + 20] > 0);
  CHECK(lab[0] == 0);
  std::vector<std::uint8_t> none(img.size(), 0);
  CHECK(segment_nuclei(img.data(), h, w, none.data(), p, lab.data()) == 0);
  std::vector<float> full(img.size(), 1.0f);
  p.opening = nullptr;  // an opening erodes the image border (read as 0): the map would not stay full
  CHECK(segment_nuclei(full.data(), h, w, nullptr, p, lab.data()) == -1);
  p.depth = 1.0;
  CHECK_THROWS_AS(segment_nuclei(img.data(), h, w, nullptr, p, lab.data()), std::invalid_argument);
}
