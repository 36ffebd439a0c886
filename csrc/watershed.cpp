#include "watershed.hpp"

#include <cmath>
#include <cstring>
#include <queue>
#include <stdexcept>
#include <string>
#include <vector>

namespace her2fast {
namespace {

// Total order of finite floats as unsigned integers (-0.0 is folded onto +0.0 beforehand).
inline std::uint32_t orderable(float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

struct Entry {
  std::uint64_t key;  // orderable(elevation) << 32 | age
  std::int32_t index;
  bool operator>(const Entry& o) const { return key > o.key; }
};

}  // namespace

void seeded_watershed(const float* elevation, std::ptrdiff_t h, std::ptrdiff_t w, const std::int32_t* markers,
                      std::int32_t n_labels, const std::uint8_t* mask, float barrier, double max_radius,
                      const std::int32_t* centre_base, const double* centre_frac, bool climb, std::int32_t* out) {
  if (elevation == nullptr || markers == nullptr || out == nullptr)
    throw std::invalid_argument("seeded_watershed: null pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("seeded_watershed: image must not be empty, got " + std::to_string(h) + "x" +
                                std::to_string(w));
  if (h * w >= (std::ptrdiff_t{1} << 31))
    throw std::invalid_argument("seeded_watershed: image too large, " + std::to_string(h * w) + " pixels");
  if (n_labels < 0) throw std::invalid_argument("seeded_watershed: n_labels must be >= 0, got " + std::to_string(n_labels));
  if (std::isnan(barrier)) throw std::invalid_argument("seeded_watershed: barrier must not be NaN");
  if (std::isnan(max_radius)) throw std::invalid_argument("seeded_watershed: max_radius must not be NaN");
  const bool limit = max_radius >= 0.0 && std::isfinite(max_radius);
  if (limit && (centre_base == nullptr || centre_frac == nullptr))
    throw std::invalid_argument("seeded_watershed: centres are required when max_radius >= 0");
  const double r2 = limit ? max_radius * max_radius : 0.0;
  const std::ptrdiff_t n = h * w;

  std::vector<std::uint32_t> key(static_cast<std::size_t>(n));
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float v = elevation[i];
    if (!std::isfinite(v))
      throw std::invalid_argument("seeded_watershed: elevation must be finite, got " + std::to_string(v) +
                                  " at pixel " + std::to_string(i));
    key[static_cast<std::size_t>(i)] = orderable(v + 0.0f);
  }
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  std::vector<std::uint8_t> seed(static_cast<std::size_t>(n), 0);
  std::uint64_t age = 0;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const std::int32_t m = markers[i];
    if (m < 0 || m > n_labels)
      throw std::invalid_argument("seeded_watershed: marker " + std::to_string(m) + " at pixel " + std::to_string(i) +
                                  " is outside 0.." + std::to_string(n_labels));
    out[i] = m;
    if (m > 0) {
      seed[static_cast<std::size_t>(i)] = 1;
      heap.push({static_cast<std::uint64_t>(key[static_cast<std::size_t>(i)]) << 32 | age++, static_cast<std::int32_t>(i)});
    }
  }
  if (limit)
    for (std::int32_t k = 1; k <= n_labels; ++k) {
      const double fx = centre_frac[2 * k], fy = centre_frac[2 * k + 1];
      if (!(fx >= 0.0 && fx < 1.0 && fy >= 0.0 && fy < 1.0))
        throw std::invalid_argument("seeded_watershed: centre_frac of label " + std::to_string(k) + " must be in [0, 1), got " +
                                    std::to_string(fx) + ", " + std::to_string(fy));
    }

  // climb: the elevation of the pixel that claimed each pixel, and whether a pixel has been popped
  std::vector<float> from(climb ? static_cast<std::size_t>(n) : 0);
  std::vector<std::uint8_t> done(climb ? static_cast<std::size_t>(n) : 0, 0);
  const std::ptrdiff_t offsets[4] = {-w, -1, 1, w};
  while (!heap.empty()) {
    const Entry e = heap.top();
    heap.pop();
    const std::ptrdiff_t p = e.index;
    const std::int32_t label = out[p];
    const std::ptrdiff_t py = p / w, px = p - py * w;
    const float ep = elevation[p];
    const bool on_barrier = !seed[static_cast<std::size_t>(p)] && ep >= barrier;
    if (climb) done[static_cast<std::size_t>(p)] = 1;
    for (int k = 0; k < 4; ++k) {
      if ((k == 0 && py == 0) || (k == 3 && py == h - 1) || (k == 1 && px == 0) || (k == 2 && px == w - 1)) continue;
      const std::ptrdiff_t q = p + offsets[k];
      const auto qs = static_cast<std::size_t>(q);
      bool steal = false;
      if (out[q] != 0) {
        // climb: a waiting pixel goes to the flood that reaches it from higher ground, still climbing
        if (!climb || out[q] == label || seed[qs] || done[qs] || !(ep > from[qs]) || !(ep < elevation[q])) continue;
        steal = true;
      }
      if (mask != nullptr && mask[q] == 0) continue;
      if (on_barrier && !(elevation[q] >= barrier)) continue;
      if (limit) {
        const std::ptrdiff_t qy = q / w, qx = q - qy * w;
        const double dx = static_cast<double>(qx - centre_base[2 * label]) - centre_frac[2 * label];
        const double dy = static_cast<double>(qy - centre_base[2 * label + 1]) - centre_frac[2 * label + 1];
        if (dx * dx + dy * dy > r2) continue;
      }
      out[q] = label;
      if (climb) from[qs] = ep;
      if (!steal)  // a stolen pixel is already queued (its key does not depend on who claimed it)
        heap.push({static_cast<std::uint64_t>(key[qs]) << 32 | age++, static_cast<std::int32_t>(q)});
    }
  }
}

}  // namespace her2fast
