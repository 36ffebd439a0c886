#include "watershed.hpp"

#include "big_alloc.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace her2fast {
namespace {

// Allocator of the flood's per-thread scratch: blocks of 2 MiB and more are aligned to 2 MiB and
// marked for transparent huge pages, so the flood's random accesses over several MiB of pixel state
// do not miss the TLB on nearly every pixel.
template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(detail::allocate_big(std::max<std::size_t>(1, n) * sizeof(T))); }
  void deallocate(T* p, std::size_t) { std::free(p); }
  bool operator==(const HugePageAllocator&) const { return true; }
  bool operator!=(const HugePageAllocator&) const { return false; }
};
template <class T>
using Scratch = std::vector<T, HugePageAllocator<T>>;

// Total order of finite floats as unsigned integers (-0.0 is folded onto +0.0 beforehand).
inline std::uint32_t orderable(float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

inline int ctz64(std::uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(v);
#else
  int i = 0;
  while (!(v & 1u)) {
    v >>= 1;
    ++i;
  }
  return i;
#endif
}

// The flood's queue pops pixels in the order of (elevation, age): a hierarchical queue with one
// level per distinct elevation, each level first-in first-out. The pixels are sorted by elevation once
// (radix sort); a pixel's level is the first position of its elevation in that order, so levels are
// ordered as elevations and equal elevations share one. A level holding one pixel needs no list (that
// pixel is the one at the level's position); a level of several (a plateau) keeps a linked list in the
// order of the pushes, its head and tail in the sorted order's slots of its own pixels (a plateau has at
// least two). Non-empty levels are bits of a hierarchical bitmap (64 children per word); the lowest
// level is the lowest bit, found from the top in one step per layer.
class LevelBitmap {
 public:
  void reset(std::size_t n_bits) {
    layers_ = 0;
    std::size_t n = n_bits;
    do {
      n = (n + 63) / 64;
      auto& v = words_[layers_++];
      v.assign(n, 0);
    } while (n > 1);
  }
  bool test(std::uint32_t i) const { return (words_[0][i >> 6] >> (i & 63)) & 1u; }
  void set(std::uint32_t i) {
    for (int l = 0; l < layers_; ++l) {
      std::uint64_t& word = words_[l][i >> 6];
      const bool was_empty = word == 0;
      word |= std::uint64_t{1} << (i & 63);
      if (!was_empty) return;
      i >>= 6;
    }
  }
  void clear(std::uint32_t i) {
    for (int l = 0; l < layers_; ++l) {
      std::uint64_t& word = words_[l][i >> 6];
      word &= ~(std::uint64_t{1} << (i & 63));
      if (word != 0) return;
      i >>= 6;
    }
  }
  // The lowest set bit; requires !empty(). `hint`: a bit position with no set bit below it, whose word
  // is looked at first.
  std::uint32_t lowest(std::uint32_t hint) const {
    const std::uint64_t w0 = words_[0][hint >> 6];
    if (w0 != 0) return (hint & ~63u) | static_cast<std::uint32_t>(ctz64(w0));
    std::uint32_t i = 0;
    for (int l = layers_ - 1; l >= 0; --l) i = (i << 6) | static_cast<std::uint32_t>(ctz64(words_[l][i]));
    return i;
  }
  // The d-th set bit above bit i in i's word (d >= 1), or none (returns false).
  bool ahead(std::uint32_t i, int d, std::uint32_t& out) const {
    std::uint64_t w = words_[0][i >> 6] & (~std::uint64_t{1} << (i & 63));
    for (int k = 1; k < d && w != 0; ++k) w &= w - 1;
    if (w == 0) return false;
    out = (i & ~63u) | static_cast<std::uint32_t>(ctz64(w));
    return true;
  }

 private:
  static constexpr int kMaxLayers = 6;  // 64^6 bits > 2^31 pixels
  std::vector<std::uint64_t> words_[kMaxLayers];
  int layers_ = 0;
};

// What the flood reads and writes per pixel, side by side in 8 bytes: the pixel's level in the
// elevation order (level << 1 | 1 when the level is a plateau; the order of these words is the order of
// the elevations, equal elevations give equal words), and the label with two flags in its top bits.
// The border around the image and pixels outside the mask carry kBlocked, so no neighbour needs a
// bounds check or a mask lookup.
struct PixelState {
  std::uint32_t level;
  std::uint32_t label_flags;  // label | kSeed | kDone
};

constexpr std::uint32_t kSeed = 1u << 30, kDone = 1u << 31, kLabelBits = kSeed - 1, kBlocked = kSeed | kDone;

// Sorts the entries key << 32 | pixel of `a` (keys in [0, span]) by key, pixels of equal key in
// increasing order, with `b` as scratch: least significant digit first over the key's top 22 bits at
// most (two passes of up to 11 bits), then the entries whose top bits are equal -- neighbours now, a few
// each -- sorted in place.
void sort_entries(Scratch<std::uint64_t>& a, Scratch<std::uint64_t>& b, std::uint32_t span) {
  int bits = 0;
  while (bits < 32 && (static_cast<std::uint64_t>(span) >> bits) != 0) ++bits;
  const int passes = (bits + 10) / 11;
  if (passes == 0) return;
  const int digit = (bits + passes - 1) / passes;
  const std::size_t n_digits = std::size_t{1} << digit;
  const std::size_t n = a.size();
  std::vector<std::uint32_t> count(n_digits * static_cast<std::size_t>(passes));
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t k = static_cast<std::uint32_t>(a[i] >> 32);
    for (int p = 0; p < passes; ++p)
      ++count[static_cast<std::size_t>(p) * n_digits + ((k >> (p * digit)) & (n_digits - 1))];
  }
  for (int p = 0; p < passes; ++p) {
    std::uint32_t* c = count.data() + static_cast<std::size_t>(p) * n_digits;
    std::uint32_t sum = 0;
    for (std::size_t d = 0; d < n_digits; ++d) {
      const std::uint32_t t = c[d];
      c[d] = sum;
      sum += t;
    }
    const int shift = 32 + p * digit;
    const std::uint64_t* src = a.data();
    std::uint64_t* dst = b.data();
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t e = src[i];
      dst[c[(e >> shift) & (n_digits - 1)]++] = e;
    }
    a.swap(b);
  }
}

}  // namespace

void seeded_watershed(const float* elevation, std::ptrdiff_t h, std::ptrdiff_t w, const std::int32_t* markers,
                      std::int32_t n_labels, const std::uint8_t* mask, float barrier, double max_radius,
                      const std::int32_t* centre_base, const double* centre_frac, bool climb, std::int32_t* out,
                      int connectivity) {
  if (elevation == nullptr || markers == nullptr || out == nullptr)
    throw std::invalid_argument("seeded_watershed: null pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("seeded_watershed: image must not be empty, got " + std::to_string(h) + "x" +
                                std::to_string(w));
  if (h * w >= (std::ptrdiff_t{1} << 31) || (h + 2) * (w + 2) >= (std::ptrdiff_t{1} << 32))
    throw std::invalid_argument("seeded_watershed: image too large, " + std::to_string(h * w) + " pixels");
  if (n_labels < 0 || static_cast<std::uint32_t>(n_labels) > kLabelBits)
    throw std::invalid_argument("seeded_watershed: n_labels must be in 0.." + std::to_string(kLabelBits) + ", got " +
                                std::to_string(n_labels));
  if (std::isnan(barrier)) throw std::invalid_argument("seeded_watershed: barrier must not be NaN");
  if (connectivity != 4 && connectivity != 8)
    throw std::invalid_argument("seeded_watershed: connectivity must be 4 or 8, got " + std::to_string(connectivity));
  if (std::isnan(max_radius)) throw std::invalid_argument("seeded_watershed: max_radius must not be NaN");
  const bool limit = max_radius >= 0.0 && std::isfinite(max_radius);
  if (limit && (centre_base == nullptr || centre_frac == nullptr))
    throw std::invalid_argument("seeded_watershed: centres are required when max_radius >= 0");
  const double r2 = limit ? max_radius * max_radius : 0.0;
  const std::ptrdiff_t n = h * w;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const std::int32_t m = markers[i];
    if (m < 0 || m > n_labels)
      throw std::invalid_argument("seeded_watershed: marker " + std::to_string(m) + " at pixel " + std::to_string(i) +
                                  " is outside 0.." + std::to_string(n_labels));
  }
  if (limit)
    for (std::int32_t k = 1; k <= n_labels; ++k) {
      const double fx = centre_frac[2 * k], fy = centre_frac[2 * k + 1];
      if (!(fx >= 0.0 && fx < 1.0 && fy >= 0.0 && fy < 1.0))
        throw std::invalid_argument("seeded_watershed: centre_frac of label " + std::to_string(k) +
                                    " must be in [0, 1), got " + std::to_string(fx) + ", " + std::to_string(fy));
    }

  // Per-thread scratch, reused across calls: fresh pages for every tile cost more (page faults and
  // zeroing) than the flood's own work on them. The image is padded by one pixel on each side.
  const std::ptrdiff_t W = w + 2, np = (h + 2) * W;
  thread_local Scratch<PixelState> px_state;
  thread_local Scratch<std::uint32_t> px_from;   // climb: the level of the pixel that claimed this one
  thread_local Scratch<std::uint32_t> px_next;   // plateau lists: the pixel pushed after this one
  thread_local Scratch<std::uint32_t> by_level;  // the pixel at each position of the elevation order
  thread_local Scratch<std::uint64_t> sort_a, sort_b;
  thread_local LevelBitmap queued;
  px_state.resize(static_cast<std::size_t>(np));
  if (climb) px_from.resize(static_cast<std::size_t>(np));
  PixelState* st = px_state.data();

  // 1. Elevation order: every pixel's level (the first position of its elevation among the sorted
  //    pixels), and the pixel at every position.
  std::uint32_t key_lo = 0xffffffffu, key_hi = 0;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float v = elevation[i];
    if (!std::isfinite(v))
      throw std::invalid_argument("seeded_watershed: elevation must be finite, got " + std::to_string(v) +
                                  " at pixel " + std::to_string(i));
    const std::uint32_t k = orderable(v + 0.0f);
    key_lo = std::min(key_lo, k);
    key_hi = std::max(key_hi, k);
  }
  sort_a.resize(static_cast<std::size_t>(n));
  sort_b.resize(static_cast<std::size_t>(n));
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    std::uint64_t* e = sort_a.data() + y * w;
    const float* v = elevation + y * w;
    const std::uint32_t p0 = static_cast<std::uint32_t>((y + 1) * W + 1);
    for (std::ptrdiff_t x = 0; x < w; ++x)
      e[x] = static_cast<std::uint64_t>(orderable(v[x] + 0.0f) - key_lo) << 32 | (p0 + static_cast<std::uint32_t>(x));
  }
  sort_entries(sort_a, sort_b, key_hi - key_lo);
  by_level.resize(static_cast<std::size_t>(n));
  std::uint32_t* const by = by_level.data();
  bool any_plateau = false;
  {
    const std::uint64_t* s = sort_a.data();
    const std::size_t nz = static_cast<std::size_t>(n);
    std::uint32_t start = 0;
    for (std::size_t t = 0; t < nz; ++t) {
      const std::uint32_t k = static_cast<std::uint32_t>(s[t] >> 32);
      const bool same_prev = t > 0 && static_cast<std::uint32_t>(s[t - 1] >> 32) == k;
      const bool same_next = t + 1 < nz && static_cast<std::uint32_t>(s[t + 1] >> 32) == k;
      start = same_prev ? start : static_cast<std::uint32_t>(t);
      const std::uint32_t p = static_cast<std::uint32_t>(s[t]);
      st[p].level = start << 1 | static_cast<std::uint32_t>(same_prev || same_next);
      by[t] = p;
      any_plateau |= same_next;
    }
  }
  // A non-seed pixel is on the barrier when its elevation is >= barrier, i.e. when its level word is >=
  // that of the first position in the order whose elevation is >= barrier (the start of its level).
  std::uint32_t barrier_word = 0xffffffffu;
  {
    auto value_at = [&](std::size_t t) {
      const std::uint32_t key = static_cast<std::uint32_t>(sort_a[t] >> 32) + key_lo;
      const std::uint32_t bits = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
      float v;
      std::memcpy(&v, &bits, sizeof v);
      return v;
    };
    std::size_t lo = 0, hi = static_cast<std::size_t>(n);  // the first position with value >= barrier
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (value_at(mid) >= barrier)
        hi = mid;
      else
        lo = mid + 1;
    }
    if (lo < static_cast<std::size_t>(n)) barrier_word = static_cast<std::uint32_t>(lo) << 1;
  }

  // 2. Labels: the border and pixels outside the mask are blocked; markers are seeds.
  for (std::ptrdiff_t x = 0; x < W; ++x) {
    st[x] = PixelState{0, kBlocked};
    st[np - W + x] = PixelState{0, kBlocked};
  }
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    PixelState* row = st + (y + 1) * W;
    row[0] = PixelState{0, kBlocked};
    row[W - 1] = PixelState{0, kBlocked};
    const std::int32_t* mk = markers + y * w;
    const std::uint8_t* mr = mask != nullptr ? mask + y * w : nullptr;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      const std::uint32_t m = static_cast<std::uint32_t>(mk[x]);
      row[x + 1].label_flags = m > 0 ? (m | kSeed) : (mr != nullptr && mr[x] == 0 ? kBlocked : 0u);
    }
  }

  // 3. The flood, seeds first in raster order.
  if (any_plateau) px_next.resize(static_cast<std::size_t>(np));
  std::uint32_t* const nxt = px_next.data();
  std::uint32_t* const from = climb ? px_from.data() : nullptr;
  queued.reset(static_cast<std::size_t>(n));
  std::size_t n_queued = 0;
  std::uint32_t lowest = 0;  // no queued level below it
  auto push = [&](std::uint32_t q, std::uint32_t word) {
    const std::uint32_t lv = word >> 1;
    ++n_queued;
    lowest = std::min(lowest, lv);
    if (!(word & 1u)) {
      queued.set(lv);
    } else if (queued.test(lv)) {  // a plateau's list: head by[lv], tail by[lv + 1]
      nxt[by[lv + 1]] = q;
      by[lv + 1] = q;
    } else {
      by[lv] = q;
      by[lv + 1] = q;
      queued.set(lv);
    }
  };
  for (std::ptrdiff_t y = 0; y < h; ++y)
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      const std::uint32_t p = static_cast<std::uint32_t>((y + 1) * W + x + 1);
      if ((st[p].label_flags & kBlocked) == kSeed) push(p, st[p].level);
    }
  lowest = 0;

  // neighbours in scikit-image's order: up, left, right, down, then the diagonals (8-connectivity)
  const std::ptrdiff_t dys[8] = {-1, 0, 0, 1, -1, -1, 1, 1}, dxs[8] = {0, -1, 1, 0, -1, 1, -1, 1};
  std::ptrdiff_t offsets[8];
  for (int k = 0; k < 8; ++k) offsets[k] = dys[k] * W + dxs[k];
  while (n_queued != 0) {
    const std::uint32_t lv = queued.lowest(lowest);
    lowest = lv;
    const std::uint32_t p = by[lv];
    const std::uint32_t ep = st[p].level;
    if ((ep & 1u) && by[lv + 1] != p) {
      by[lv] = nxt[p];
    } else {
      queued.clear(lv);
    }
    --n_queued;
#if defined(__GNUC__) || defined(__clang__)
    // the flood jumps around the image: fetch the rows of a pixel due shortly while this one is processed
    std::uint32_t ahead_lv;
    if (queued.ahead(lv, 2, ahead_lv)) {
      const std::uint32_t nx = by[ahead_lv];
      __builtin_prefetch(st + nx - W);
      __builtin_prefetch(st + nx);
      __builtin_prefetch(st + nx + W);
    }
#endif
    const std::uint32_t lf = st[p].label_flags;
    const std::uint32_t label = lf & kLabelBits;
    const bool on_barrier = !(lf & kSeed) && ep >= barrier_word;
    if (climb) st[p].label_flags = lf | kDone;
    std::ptrdiff_t px = 0, py = 0;
    std::int32_t bx = 0, by_ = 0;
    double fx = 0.0, fy = 0.0;
    if (limit) {
      py = static_cast<std::ptrdiff_t>(p / static_cast<std::uint32_t>(W));
      px = static_cast<std::ptrdiff_t>(p) - py * W - 1;
      py -= 1;
      bx = centre_base[2 * label];
      by_ = centre_base[2 * label + 1];
      fx = centre_frac[2 * label];
      fy = centre_frac[2 * label + 1];
    }
    for (int k = 0; k < connectivity; ++k) {
      const std::uint32_t q = static_cast<std::uint32_t>(static_cast<std::ptrdiff_t>(p) + offsets[k]);
      PixelState& sq = st[q];
      bool steal = false;
      if (sq.label_flags != 0) {
        // climb: a waiting pixel goes to the flood that reaches it from higher ground, still climbing
        // (seeds, popped and blocked pixels carry a flag, so their label_flags never equal a bare label)
        if (!climb || sq.label_flags == label || (sq.label_flags & ~kLabelBits) != 0 || !(ep > from[q]) ||
            !(ep < sq.level))
          continue;
        steal = true;
      }
      if (on_barrier && !(sq.level >= barrier_word)) continue;
      if (limit) {
        const double dx = static_cast<double>(px + dxs[k] - bx) - fx;
        const double dy = static_cast<double>(py + dys[k] - by_) - fy;
        if (dx * dx + dy * dy > r2) continue;
      }
      sq.label_flags = label;
      if (climb) from[q] = ep;
      // a stolen pixel is already queued (its level does not depend on who claimed it)
      if (!steal) push(q, sq.level);
    }
  }
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const PixelState* row = st + (y + 1) * W + 1;
    std::int32_t* o = out + y * w;
    for (std::ptrdiff_t x = 0; x < w; ++x) o[x] = static_cast<std::int32_t>(row[x].label_flags & kLabelBits);
  }
  // keep a tile's worth of scratch per thread, not the largest image ever flooded
  if (px_state.capacity() > (std::size_t{8} << 20)) {
    Scratch<PixelState>().swap(px_state);
    Scratch<std::uint32_t>().swap(px_from);
    Scratch<std::uint32_t>().swap(px_next);
    Scratch<std::uint32_t>().swap(by_level);
    Scratch<std::uint64_t>().swap(sort_a);
    Scratch<std::uint64_t>().swap(sort_b);
    queued.reset(1);
  }
}

}  // namespace her2fast
