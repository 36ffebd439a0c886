#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <queue>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "slic.hpp"

namespace {

// Number of 4-connected components of label k (pixels with label k).
int components_of(const std::vector<std::int32_t>& lab, int h, int w, std::int32_t k) {
  std::vector<char> seen(lab.size(), 0);
  int comps = 0;
  for (int p = 0; p < h * w; ++p) {
    if (lab[p] != k || seen[p]) continue;
    ++comps;
    std::queue<int> q;
    q.push(p);
    seen[p] = 1;
    while (!q.empty()) {
      const int c = q.front();
      q.pop();
      const int y = c / w, x = c % w;
      const int nb[4][2] = {{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}};
      for (auto& n : nb) {
        if (n[0] < 0 || n[1] < 0 || n[0] >= h || n[1] >= w) continue;
        const int m = n[0] * w + n[1];
        if (lab[m] == k && !seen[m]) {
          seen[m] = 1;
          q.push(m);
        }
      }
    }
  }
  return comps;
}

std::vector<std::uint8_t> noisy_image(int h, int w, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> img(static_cast<std::size_t>(h) * w * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        img[(static_cast<std::size_t>(y) * w + x) * 3 + c] =
            static_cast<std::uint8_t>(((x / 13 + y / 17 + c) % 3) * 80 + rng() % 40);
  return img;
}

}  // namespace

TEST_CASE("slic: four flat quadrants with four segments give exactly the quadrants") {
  const int h = 64, w = 64;
  std::vector<std::uint8_t> img(h * w * 3);
  const std::uint8_t colours[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int q = (y >= h / 2) * 2 + (x >= w / 2);
      for (int c = 0; c < 3; ++c) img[(y * w + x) * 3 + c] = colours[q][c];
    }
  std::vector<std::int32_t> lab(h * w);
  her2fast::SlicParams p;
  p.n_segments = 4;
  const int k = her2fast::slic(img.data(), h, w, 3 * w, nullptr, 0, p, lab.data());
  REQUIRE(k == 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int q = (y >= h / 2) * 2 + (x >= w / 2);
      // Same quadrant <=> same label, compared with the quadrant's top-left pixel.
      const int ref = lab[(q / 2) * (h / 2) * w + (q % 2) * (w / 2)];
      REQUIRE(lab[y * w + x] == ref);
    }
}

TEST_CASE("slic: every label is one 4-connected region, labels are 0..K-1, count near n_segments") {
  const int h = 120, w = 150;
  const auto img = noisy_image(h, w, 5);
  std::vector<std::int32_t> lab(h * w);
  her2fast::SlicParams p;
  p.n_segments = 60;
  const int k = her2fast::slic(img.data(), h, w, 3 * w, nullptr, 0, p, lab.data());
  CHECK(k >= 45);
  CHECK(k <= 75);
  std::set<std::int32_t> seen(lab.begin(), lab.end());
  CHECK(static_cast<int>(seen.size()) == k);
  CHECK(*seen.begin() == 0);
  CHECK(*seen.rbegin() == k - 1);
  for (int i = 0; i < k; ++i) REQUIRE(components_of(lab, h, w, i) == 1);
}

TEST_CASE("slic: deterministic") {
  const int h = 80, w = 90;
  const auto img = noisy_image(h, w, 9);
  std::vector<std::int32_t> a(h * w), b(h * w);
  her2fast::SlicParams p;
  p.n_segments = 30;
  her2fast::slic(img.data(), h, w, 3 * w, nullptr, 0, p, a.data());
  her2fast::slic(img.data(), h, w, 3 * w, nullptr, 0, p, b.data());
  CHECK(a == b);
}

TEST_CASE("slic: with a mask, outside pixels are -1 and inside labels are connected") {
  const int h = 100, w = 100;
  const auto img = noisy_image(h, w, 11);
  std::vector<std::uint8_t> mask(h * w, 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) mask[y * w + x] = (x - 50) * (x - 50) + (y - 50) * (y - 50) < 40 * 40;
  std::vector<std::int32_t> lab(h * w);
  her2fast::SlicParams p;
  p.n_segments = 20;
  const int k = her2fast::slic(img.data(), h, w, 3 * w, mask.data(), w, p, lab.data());
  CHECK(k >= 15);
  CHECK(k <= 25);
  for (int i = 0; i < h * w; ++i) REQUIRE((lab[i] == -1) == (mask[i] == 0));
  for (int i = 0; i < k; ++i) REQUIRE(components_of(lab, h, w, i) == 1);
}

TEST_CASE("slic: an empty mask gives no superpixels") {
  std::vector<std::uint8_t> img(10 * 10 * 3, 100), mask(100, 0);
  std::vector<std::int32_t> lab(100, 7);
  her2fast::SlicParams p;
  CHECK(her2fast::slic(img.data(), 10, 10, 30, mask.data(), 10, p, lab.data()) == 0);
  CHECK(std::all_of(lab.begin(), lab.end(), [](std::int32_t v) { return v == -1; }));
}

TEST_CASE("enforce_connectivity: splits labels, merges small fragments, keeps each label's body") {
  // min_size 8 (tiny: 2). Label 0: two 6-px blocks, the first is its body (kept though < 8), the
  // second a fragment (merged). Label 3: a 1-px island (fragment, merged) and an 8-px body. Label 2:
  // a 2-px fragment (merged) and a 9-px body. Label 9: a 1-px body, tiny, merged.
  const int h = 6, w = 8;
  std::vector<std::int32_t> lab = {
      0, 0, 1, 1, 1, 1, 0, 0,  //
      0, 0, 1, 1, 1, 1, 0, 0,  //
      0, 0, 1, 3, 1, 1, 0, 0,  //
      2, 2, 1, 1, 1, 1, 2, 2,  //
      3, 3, 3, 3, 2, 2, 2, 2,  //
      3, 3, 3, 3, 2, 2, 2, 9,
  };
  std::vector<std::uint8_t> inside(h * w, 1);
  const int k = her2fast::enforce_connectivity(lab.data(), h, w, inside.data(), 8);
  CHECK(k == 4);
  auto at = [&](int y, int x) { return lab[y * w + x]; };
  CHECK(at(0, 6) == at(0, 2));  // right 0-block joined label 1, its earliest neighbour
  CHECK(at(2, 3) == at(2, 2));  // the island joined label 1
  CHECK(at(3, 0) == at(0, 0));  // the 2-px fragment of label 2 joined the left 0-block (met first)
  CHECK(at(4, 0) != at(0, 0));  // label 3's body is a superpixel of its own
  CHECK(at(5, 7) == at(5, 6));  // tiny body of label 9 merged
  CHECK(at(0, 0) != at(0, 2));
  for (int i = 0; i < k; ++i) CHECK(components_of(lab, h, w, i) == 1);
}

TEST_CASE("slic: invalid arguments throw std::invalid_argument") {
  std::vector<std::uint8_t> img(4 * 4 * 3, 0);
  std::vector<std::int32_t> lab(16);
  her2fast::SlicParams p;
  p.n_segments = 0;
  CHECK_THROWS_AS(her2fast::slic(img.data(), 4, 4, 12, nullptr, 0, p, lab.data()), std::invalid_argument);
  p = {};
  p.compactness = -1;
  CHECK_THROWS_AS(her2fast::slic(img.data(), 4, 4, 12, nullptr, 0, p, lab.data()), std::invalid_argument);
  p = {};
  p.max_iter = 0;
  CHECK_THROWS_AS(her2fast::slic(img.data(), 4, 4, 12, nullptr, 0, p, lab.data()), std::invalid_argument);
  p = {};
  CHECK_THROWS_AS(her2fast::slic(img.data(), 0, 4, 12, nullptr, 0, p, lab.data()), std::invalid_argument);
  CHECK_THROWS_AS(her2fast::slic(img.data(), 4, 4, 11, nullptr, 0, p, lab.data()), std::invalid_argument);
}
