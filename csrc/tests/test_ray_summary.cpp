#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "ray_summary.hpp"

using her2fast::ray_summary;

TEST_CASE("ray_summary: gaps closed as the rolled-mask formulation, lower medians as a full sort") {
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> u(0.0f, 3.0f);
  for (int trial = 0; trial < 200; ++trial) {
    const int m = static_cast<int>(rng() % 6), r = 1 + static_cast<int>(rng() % 20);
    const std::int64_t gap = static_cast<std::int64_t>(rng() % 25) - 1;  // -1 .. 23, may exceed r
    const bool with_tol = rng() % 2 == 0;
    const unsigned density = rng() % 100;
    std::vector<float> run(static_cast<std::size_t>(m * r)), peak(run.size()), tol(run.size());
    for (std::size_t i = 0; i < run.size(); ++i) {
      run[i] = rng() % 100 < density ? u(rng) : 0.0f;
      peak[i] = u(rng);
      tol[i] = run[i] > 0.0f || rng() % 3 == 0 ? 1.0f : 0.0f;
    }
    std::vector<double> comp(static_cast<std::size_t>(m));
    std::vector<float> od(static_cast<std::size_t>(m)), rm(static_cast<std::size_t>(m));
    std::vector<std::int64_t> nc(static_cast<std::size_t>(m));
    ray_summary(run.data(), peak.data(), with_tol ? tol.data() : nullptr, m, r, gap, comp.data(), od.data(), rm.data(),
                nc.data());
    for (int i = 0; i < m; ++i) {
      std::vector<float> pv, rv;
      std::vector<bool> cov(static_cast<std::size_t>(r)), t(static_cast<std::size_t>(r));
      for (int k = 0; k < r; ++k) {
        cov[k] = run[i * r + k] > 0.0f;
        if (cov[k]) {
          pv.push_back(peak[i * r + k]);
          rv.push_back(run[i * r + k]);
        }
      }
      CHECK(nc[i] == static_cast<std::int64_t>(pv.size()));
      for (int k = 0; k < r; ++k) t[k] = with_tol ? (tol[i * r + k] > 0.0f && !pv.empty()) : cov[k];
      // the NumPy steps: prev / nxt start at r + 1 off coverage and take the first k whose roll is covered
      std::vector<std::int64_t> prev(static_cast<std::size_t>(r)), nxt(static_cast<std::size_t>(r));
      for (int k = 0; k < r; ++k) prev[k] = nxt[k] = t[k] ? 0 : r + 1;
      for (std::int64_t s = 1; s <= gap; ++s)
        for (int k = 0; k < r; ++k) {
          const int back = static_cast<int>(((k - s) % r + r) % r), fwd = static_cast<int>((k + s) % r);
          if (!t[k] && prev[k] == r + 1 && t[back]) prev[k] = s;
          if (!t[k] && nxt[k] == r + 1 && t[fwd]) nxt[k] = s;
        }
      int closed = 0;
      for (int k = 0; k < r; ++k) closed += gap < 1 ? static_cast<int>(t[k]) : (t[k] || prev[k] + nxt[k] - 1 <= gap);
      CHECK(comp[i] == static_cast<double>(closed) / r);
      std::sort(pv.begin(), pv.end());
      std::sort(rv.begin(), rv.end());
      const std::size_t mid = pv.empty() ? 0 : (pv.size() - 1) / 2;
      CHECK(od[i] == (pv.empty() ? 0.0f : pv[mid]));
      CHECK(rm[i] == (rv.empty() ? 0.0f : rv[mid]));
    }
  }
  std::vector<float> one(1, 1.0f);
  double c = 0;
  float a = 0, b = 0;
  std::int64_t n = 0;
  CHECK_THROWS_AS(ray_summary(one.data(), one.data(), nullptr, 1, 0, 3, &c, &a, &b, &n), std::invalid_argument);
}

TEST_CASE("label_sums: counts and exact coordinate sums per label, other values ignored") {
  std::mt19937 rng(17);
  for (int trial = 0; trial < 30; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 40), w = 1 + static_cast<int>(rng() % 40),
              n = static_cast<int>(rng() % 8);
    std::vector<std::int32_t> lab(static_cast<std::size_t>(h * w));
    for (auto& v : lab) v = static_cast<std::int32_t>(rng() % 12) - 2;  // -2 .. 9: some outside 0..n-1
    std::vector<std::int64_t> c(static_cast<std::size_t>(n)), sx(c.size()), sy(c.size());
    her2fast::label_sums(lab.data(), h, w, n, c.data(), sx.data(), sy.data());
    for (int l = 0; l < n; ++l) {
      std::int64_t wc = 0, wx = 0, wy = 0;
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          if (lab[static_cast<std::size_t>(y * w + x)] == l) {
            ++wc;
            wx += x;
            wy += y;
          }
      CHECK(c[l] == wc);
      CHECK(sx[l] == wx);
      CHECK(sy[l] == wy);
    }
  }
}
