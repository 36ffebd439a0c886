#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "cell_stats.hpp"
#include "deconvolve.hpp"
#include "membrane_rays.hpp"

using her2fast::cell_landscape;
using her2fast::deconvolve_rgb;
using her2fast::label_means;
using her2fast::membrane_rays;
using her2fast::region_max_dist2;

TEST_CASE("region_max_dist2: the farthest pixel of each listed region, on random label maps") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const int h = 5 + static_cast<int>(rng() % 40), w = 5 + static_cast<int>(rng() % 40),
              n_reg = 1 + static_cast<int>(rng() % 12);
    std::vector<std::int32_t> regions(static_cast<std::size_t>(h * w));
    for (auto& r : regions) r = static_cast<std::int32_t>(rng() % (n_reg + 1)) - 1;  // -1 .. n_reg - 1
    const int m = static_cast<int>(rng() % (n_reg + 2));
    std::vector<std::int32_t> ids(static_cast<std::size_t>(m)), base(2 * static_cast<std::size_t>(m));
    std::vector<double> frac(2 * static_cast<std::size_t>(m));
    std::uniform_real_distribution<double> u(0.0, 0.999);
    for (int i = 0; i < m; ++i) {
      ids[i] = static_cast<std::int32_t>(rng() % (n_reg + 3));  // may be absent from the map or listed twice
      base[2 * i] = static_cast<std::int32_t>(rng() % w);
      base[2 * i + 1] = static_cast<std::int32_t>(rng() % h);
      frac[2 * i] = u(rng);
      frac[2 * i + 1] = u(rng);
    }
    std::vector<double> got(static_cast<std::size_t>(m), -1.0);
    region_max_dist2(regions.data(), h, w, m, ids.data(), base.data(), frac.data(), got.data());
    for (int i = 0; i < m; ++i) {
      bool last = true;
      for (int j = i + 1; j < m; ++j) last = last && ids[j] != ids[i];
      double want = 0.0;
      if (last)
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x)
            if (regions[y * w + x] == ids[i]) {
              const double dx = (x - base[2 * i]) - frac[2 * i], dy = (y - base[2 * i + 1]) - frac[2 * i + 1];
              want = std::max(want, dx * dx + dy * dy);
            }
      CHECK(got[i] == want);
    }
  }
  std::vector<std::int32_t> regions = {0, 1}, ids = {-1}, base = {0, 0};
  std::vector<double> frac = {0.0, 0.0}, out(1);
  CHECK_THROWS_AS(region_max_dist2(regions.data(), 1, 2, 1, ids.data(), base.data(), frac.data(), out.data()),
                  std::invalid_argument);
}

TEST_CASE("label_means: per-label means over the pixels not excluded, on random maps") {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 40; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 500), n_labels = static_cast<int>(rng() % 9);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n)), nuc(static_cast<std::size_t>(n));
    std::vector<std::uint8_t> ex(static_cast<std::size_t>(n));
    std::vector<float> val(static_cast<std::size_t>(n));
    std::uniform_real_distribution<float> u(-1.0f, 3.0f);
    for (int i = 0; i < n; ++i) {
      labels[i] = static_cast<std::int32_t>(rng() % (n_labels + 2)) - 1;  // -1 .. n_labels
      nuc[i] = (rng() % 4 == 0) ? static_cast<std::int32_t>(1 + rng() % 3) : 0;
      ex[i] = static_cast<std::uint8_t>(rng() % 3 == 0);
      val[i] = u(rng);
    }
    std::vector<double> got(static_cast<std::size_t>(n_labels));
    label_means(labels.data(), val.data(), ex.data(), nuc.data(), n, n_labels, got.data());
    for (int l = 1; l <= n_labels; ++l) {
      double t = 0.0;
      long c = 0;
      for (int i = 0; i < n; ++i)
        if (labels[i] == l && !ex[i] && nuc[i] == 0) t += val[i], ++c;
      CHECK(got[l - 1] == (c ? t / c : 0.0));
    }
    // no exclusion maps: every labelled pixel counts
    label_means(labels.data(), val.data(), nullptr, nullptr, n, n_labels, got.data());
    for (int l = 1; l <= n_labels; ++l) {
      double t = 0.0;
      long c = 0;
      for (int i = 0; i < n; ++i)
        if (labels[i] == l) t += val[i], ++c;
      CHECK(got[l - 1] == (c ? t / c : 0.0));
    }
  }
  std::vector<std::int32_t> labels = {3};
  std::vector<float> val = {1.0f};
  std::vector<double> out(2);
  CHECK_THROWS_AS(label_means(labels.data(), val.data(), nullptr, nullptr, 1, 2, out.data()), std::invalid_argument);
}

TEST_CASE("cell_landscape: membrane pixels get probability + stain, others stay below the threshold") {
  const std::vector<float> prob = {0.0f, 0.3f, 0.5f, 0.9f, 0.49f}, od = {0.0f, 1.0f, -0.5f, 3.0f, 100.0f};
  std::vector<float> land(5);
  std::vector<std::uint8_t> mask(5);
  cell_landscape(prob.data(), od.data(), 5, 0.5f, 0.25f, 0.8f, 1.0f - 1e-6f, land.data(), mask.data());
  CHECK(mask == std::vector<std::uint8_t>{0, 0, 1, 1, 0});
  CHECK(land[0] == 0.0f);
  CHECK(land[1] == doctest::Approx(0.25 * (0.6 + 0.4)));
  CHECK(land[2] == doctest::Approx(0.5));
  CHECK(land[3] == doctest::Approx(0.9 + 0.8 * 0.75));
  for (int i : {0, 1, 4}) CHECK(land[i] < 0.5f);
}

TEST_CASE("deconvolve_rgb: lookup then unmixing, as planes, on random pixels") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> lut(256 * 3), unmix(9);
  for (auto& v : lut) v = u(rng);
  for (auto& v : unmix) v = u(rng);
  const int n = 1000;
  std::vector<std::uint8_t> rgb(3 * n);
  for (auto& v : rgb) v = static_cast<std::uint8_t>(rng());
  std::vector<float> out(3 * n);
  deconvolve_rgb(rgb.data(), n, lut.data(), unmix.data(), out.data());
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) {
      double want = 0.0;
      for (int c = 0; c < 3; ++c) want += static_cast<double>(lut[3 * rgb[3 * i + c] + c]) * unmix[3 * c + k];
      CHECK(out[k * n + i] == doctest::Approx(want).epsilon(1e-5).scale(1.0));
    }
}

TEST_CASE("membrane_rays: cell_labels measures a subset exactly as the full call does") {
  // three nuclei in three square territories, each ringed by membrane
  const int h = 30, w = 90;
  std::vector<std::int32_t> labels(h * w, 0);
  std::vector<std::uint8_t> membrane(h * w, 0);
  std::vector<float> od(h * w, 0.0f);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int k = x / 30, lx = x % 30;
      labels[y * w + x] = k + 1;
      if (y == 2 || y == 27 || lx == 2 || lx == 27) membrane[y * w + x] = 1, od[y * w + x] = 0.5f + k;
    }
  std::vector<std::int32_t> base = {15, 15, 45, 15, 75, 15};
  std::vector<double> frac = {0.25, 0.5, 0.1, 0.7, 0.9, 0.0};
  const int nr = 16;
  std::vector<float> run(3 * nr), peak(3 * nr);
  membrane_rays(labels.data(), membrane.data(), od.data(), h, w, 3, base.data(), frac.data(), nr, 20.0, 0.0, 5.0,
                std::numeric_limits<double>::infinity(), 0.0, run.data(), peak.data());
  std::vector<std::int32_t> sub_base = {75, 15, 15, 15}, sub_labels = {3, 1};
  std::vector<double> sub_frac = {0.9, 0.0, 0.25, 0.5};
  std::vector<float> run2(2 * nr), peak2(2 * nr);
  membrane_rays(labels.data(), membrane.data(), od.data(), h, w, 2, sub_base.data(), sub_frac.data(), nr, 20.0, 0.0,
                5.0, std::numeric_limits<double>::infinity(), 0.0, run2.data(), peak2.data(), sub_labels.data());
  for (int r = 0; r < nr; ++r) {
    CHECK(run2[r] == run[2 * nr + r]);
    CHECK(peak2[r] == peak[2 * nr + r]);
    CHECK(run2[nr + r] == run[r]);
    CHECK(peak2[nr + r] == peak[r]);
  }
  CHECK(peak[2 * nr] == 2.5f);
}
