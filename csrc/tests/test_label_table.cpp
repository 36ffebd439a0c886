#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <random>
#include <stdexcept>
#include <vector>

#include "label_table.hpp"

using her2fast::label_table;

TEST_CASE("label_table keeps objects with enough pixels, in label order, with exact sums") {
  std::mt19937 rng(7);
  for (int it = 0; it < 50; ++it) {
    const int h = 1 + static_cast<int>(rng() % 40), w = 1 + static_cast<int>(rng() % 40);
    const int top = static_cast<int>(rng() % 30);
    std::vector<std::int32_t> lab(static_cast<std::size_t>(h * w));
    for (auto& v : lab) v = (rng() % 3 == 0) ? 0 : static_cast<std::int32_t>(rng() % (top + 1));
    const std::int64_t min_px = static_cast<std::int64_t>(rng() % 6);
    // the definition, with maps
    std::map<int, std::int64_t> cnt, sx, sy;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        if (int v = lab[y * w + x]) {
          ++cnt[v];
          sx[v] += x;
          sy[v] += y;
        }
    std::map<int, int> renum;
    int n = 0;
    for (auto& [v, c] : cnt)
      if (c >= std::max<std::int64_t>(min_px, 1)) renum[v] = ++n;
    std::vector<std::int32_t> out(lab.size(), -1);
    const auto t = label_table(lab.data(), h, w, min_px, 1 << 20, out.data());
    REQUIRE(t.n == n);
    for (auto& [v, k] : renum) {
      CHECK(t.count[k - 1] == cnt[v]);
      CHECK(t.sum_x[k - 1] == sx[v]);
      CHECK(t.sum_y[k - 1] == sy[v]);
    }
    for (std::size_t i = 0; i < lab.size(); ++i) {
      const auto r = renum.find(lab[i]);
      CHECK(out[i] == (lab[i] != 0 && r != renum.end() ? r->second : 0));
    }
  }
}

TEST_CASE("label_table rejects negative labels, labels above the bound, empty images") {
  std::vector<std::int32_t> lab{0, 1, -2, 3}, out(4);
  CHECK_THROWS_AS(label_table(lab.data(), 2, 2, 1, 100, out.data()), std::invalid_argument);
  lab[2] = 200;
  CHECK_THROWS_AS(label_table(lab.data(), 2, 2, 1, 100, out.data()), std::invalid_argument);
  CHECK_THROWS_AS(label_table(lab.data(), 0, 2, 1, 100, out.data()), std::invalid_argument);
}
