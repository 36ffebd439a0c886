#include "skeleton.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>

namespace her2fast {
namespace {

// Neighbour code of a pixel: bit i-1 holds x_i (x1 = E, x2 = NE, x3 = N, x4 = NW, x5 = W,
// x6 = SW, x7 = S, x8 = SE).
constexpr bool bit(unsigned code, int i) { return (code >> (i - 1)) & 1u; }  // x_i, i in 1..8 (9 -> 1)

constexpr bool g12(unsigned c) {
  auto x = [c](int i) { return bit(c, i > 8 ? i - 8 : i); };
  int xh = 0;
  for (int i = 1; i <= 4; ++i) xh += !x(2 * i - 1) && (x(2 * i) || x(2 * i + 1));
  int n1 = 0, n2 = 0;
  for (int k = 1; k <= 4; ++k) {
    n1 += x(2 * k - 1) || x(2 * k);
    n2 += x(2 * k) || x(2 * k + 1);
  }
  const int m = n1 < n2 ? n1 : n2;
  return xh == 1 && m >= 2 && m <= 3;
}
constexpr bool g3(unsigned c) { return !((bit(c, 2) || bit(c, 3) || !bit(c, 8)) && bit(c, 1)); }
constexpr bool g3p(unsigned c) { return !((bit(c, 6) || bit(c, 7) || !bit(c, 4)) && bit(c, 5)); }

// Deletion tables of the two subiterations, indexed by the neighbour code.
struct ThinTables {
  std::array<std::uint8_t, 256> first{}, second{};
  constexpr ThinTables() {
    for (unsigned c = 0; c < 256; ++c) {
      first[c] = g12(c) && g3(c);
      second[c] = g12(c) && g3p(c);
    }
  }
};
constexpr ThinTables kThin{};

}  // namespace

int thin_guo_hall(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride,
                  std::uint8_t* out, int max_iter) {
  if (mask == nullptr || out == nullptr) throw std::invalid_argument("thin_guo_hall: null pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("thin_guo_hall: image must not be empty, got " + std::to_string(h) + "x" +
                                std::to_string(w));
  if (stride < w) throw std::invalid_argument("thin_guo_hall: stride " + std::to_string(stride) + " < width");
  // Work in a frame one pixel wider on each side (zeros): neighbour reads need no bounds checks.
  const std::ptrdiff_t wp = w + 2;
  std::vector<std::uint8_t> img(static_cast<std::size_t>((h + 2) * wp), 0);
  std::vector<std::int32_t> fg;  // foreground pixels (frame indices): only they can be deleted
  for (std::ptrdiff_t y = 0; y < h; ++y)
    for (std::ptrdiff_t x = 0; x < w; ++x)
      if (mask[y * stride + x]) {
        const std::ptrdiff_t p = (y + 1) * wp + x + 1;
        img[static_cast<std::size_t>(p)] = 1;
        fg.push_back(static_cast<std::int32_t>(p));
      }
  auto code = [&](std::ptrdiff_t p) -> unsigned {
    const std::uint8_t* q = img.data() + p;
    return static_cast<unsigned>(q[1]) | static_cast<unsigned>(q[-wp + 1]) << 1 | static_cast<unsigned>(q[-wp]) << 2 |
           static_cast<unsigned>(q[-wp - 1]) << 3 | static_cast<unsigned>(q[-1]) << 4 |
           static_cast<unsigned>(q[wp - 1]) << 5 | static_cast<unsigned>(q[wp]) << 6 |
           static_cast<unsigned>(q[wp + 1]) << 7;
  };
  std::vector<std::int32_t> doomed;
  int iterations = 0;
  while (max_iter < 0 || iterations < max_iter) {
    ++iterations;
    bool deleted = false;
    for (int sub = 0; sub < 2; ++sub) {
      const auto& table = sub == 0 ? kThin.first : kThin.second;
      doomed.clear();
      for (const std::int32_t p : fg)
        if (table[code(p)]) doomed.push_back(p);  // decided on the image as it was
      for (const std::int32_t p : doomed) img[static_cast<std::size_t>(p)] = 0;
      deleted |= !doomed.empty();
      if (!doomed.empty())  // keep only the survivors in the foreground list
        fg.erase(
            std::remove_if(fg.begin(), fg.end(), [&](std::int32_t p) { return img[static_cast<std::size_t>(p)] == 0; }),
            fg.end());
    }
    if (!deleted) break;
  }
  for (std::ptrdiff_t y = 0; y < h; ++y) std::copy_n(img.data() + (y + 1) * wp + 1, w, out + y * w);
  return iterations;
}

RegionTable enclosed_regions(const std::uint8_t* skeleton, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride,
                             std::int32_t* labels) {
  if (skeleton == nullptr || labels == nullptr) throw std::invalid_argument("enclosed_regions: null pointer");
  if (h < 1 || w < 1) throw std::invalid_argument("enclosed_regions: image must not be empty");
  if (stride < w) throw std::invalid_argument("enclosed_regions: stride < width");
  // Two-pass labelling with union-find over provisional labels (4-connectivity).
  std::vector<std::int32_t> parent;
  auto find = [&](std::int32_t i) {
    while (parent[static_cast<std::size_t>(i)] != i) {
      parent[static_cast<std::size_t>(i)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(i)])];
      i = parent[static_cast<std::size_t>(i)];
    }
    return i;
  };
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const std::uint8_t* s = skeleton + y * stride;
    std::int32_t* l = labels + y * w;
    const std::int32_t* up = y > 0 ? labels + (y - 1) * w : nullptr;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      if (s[x]) {
        l[x] = -1;
        continue;
      }
      const std::int32_t left = x > 0 ? l[x - 1] : -1;
      const std::int32_t top = up != nullptr ? up[x] : -1;
      if (left < 0 && top < 0) {
        l[x] = static_cast<std::int32_t>(parent.size());
        parent.push_back(l[x]);
      } else if (left < 0 || top < 0) {
        l[x] = left < 0 ? top : left;
      } else {
        const std::int32_t a = find(left), b = find(top);
        const std::int32_t lo = std::min(a, b);
        parent[static_cast<std::size_t>(std::max(a, b))] = lo;
        l[x] = lo;
      }
    }
  }
  // Final labels in raster order of first pixel: provisional labels are created in raster order,
  // and every root is the smallest provisional label of its set.
  std::vector<std::int32_t> final_label(parent.size(), -1);
  std::int32_t n = 0;
  for (std::size_t i = 0; i < parent.size(); ++i) {
    const std::int32_t r = find(static_cast<std::int32_t>(i));
    if (r == static_cast<std::int32_t>(i)) final_label[i] = n++;
  }
  RegionTable table;
  table.area.assign(static_cast<std::size_t>(n), 0);
  table.touches_border.assign(static_cast<std::size_t>(n), 0);
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    std::int32_t* l = labels + y * w;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      if (l[x] < 0) continue;
      const std::int32_t f = final_label[static_cast<std::size_t>(find(l[x]))];
      l[x] = f;
      ++table.area[static_cast<std::size_t>(f)];
      if (y == 0 || x == 0 || y == h - 1 || x == w - 1) table.touches_border[static_cast<std::size_t>(f)] = 1;
    }
  }
  return table;
}

}  // namespace her2fast
