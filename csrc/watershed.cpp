#include "watershed.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
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

// The flood's queue: entries (orderable(elevation) << 32 | age, pixel); keys are unique, and pops
// return them in exactly the order of one min-heap. A single heap over a tile grows to ~10^5 entries
// (every pixel waiting on a membrane), far beyond L2, and each pop then pays a cache miss per level.
// So entries are spread over buckets by the high bits of the elevation key (bucket order = key
// order); only the lowest non-empty bucket is kept as a (small) binary heap; entries pushed into other
// buckets are appended unsorted and heapified when their bucket becomes the lowest. A push below the
// current bucket (a pit) makes that bucket current; the bucket it leaves stays a valid heap.
struct QueueEntry {
  std::uint64_t key;
  std::int32_t pixel;
  bool operator>(const QueueEntry& o) const { return key > o.key; }
};

// The lowest bucket's binary min-heap (keys are unique, so any min-heap pops in the same order as
// std::pop_heap with std::greater, and std::make_heap builds a valid one). The pop descends to a leaf
// along the smaller child with a branch-free choice, then sifts the last entry up (Floyd): a flood
// pops every pixel once, and std::pop_heap's unpredictable child comparisons cost more than its
// memory traffic (1.13-1.22x faster floods of real cell landscapes, same output).
// Moves entry e up from the hole at index i until its parent's key is not larger, and stores it.
inline void heap_sift_up(QueueEntry* a, std::size_t i, const QueueEntry e) {
  while (i > 0) {
    const std::size_t p = (i - 1) / 2;
    if (a[p].key <= e.key) break;
    a[i] = a[p];
    i = p;
  }
  a[i] = e;
}
inline std::int32_t heap_pop(std::vector<QueueEntry>& v) {
  const std::int32_t top = v[0].pixel;
  const QueueEntry last = v.back();
  v.pop_back();
  const std::size_t n = v.size();
  if (n == 0) return top;
  QueueEntry* a = v.data();
  std::size_t i = 0;
  for (;;) {  // down to a leaf along the smaller child (Floyd), then the last entry sifts up
    std::size_t c = 2 * i + 1;
    if (c + 1 < n) {
      c += static_cast<std::size_t>(a[c + 1].key < a[c].key);
    } else if (c >= n) {
      break;
    }
    a[i] = a[c];
    i = c;
  }
  heap_sift_up(a, i, last);
  return top;
}

class FloodQueue {
 public:
  // All elevation keys lie in [lo, hi].
  FloodQueue(std::uint32_t lo, std::uint32_t hi)
      : lo_(lo >> kShift),
        buckets_((hi >> kShift) - (lo >> kShift) + 1),
        is_heap_(buckets_.size(), 0),
        cur_(buckets_.size()) {}
  bool empty() const { return size_ == 0; }
  void push(std::uint32_t elevation_key, std::uint32_t age, std::int32_t pixel) {
    const QueueEntry e{static_cast<std::uint64_t>(elevation_key) << 32 | age, pixel};
    const std::size_t b = (elevation_key >> kShift) - lo_;
    auto& v = buckets_[b];
    v.push_back(e);
    ++size_;
    if (b < cur_) {
      cur_ = b;
      if (!is_heap_[b]) {
        std::make_heap(v.begin(), v.end(), std::greater<QueueEntry>());
        is_heap_[b] = 1;
        return;
      }
    }
    if (is_heap_[b]) heap_sift_up(v.data(), v.size() - 1, v.back());
  }
  // The pixel that pop() will return next if nothing smaller is pushed first, or -1 when that is not
  // known cheaply (the lowest bucket is not a heap yet or is empty): for prefetching only.
  std::int32_t peek() const {
    if (cur_ >= buckets_.size() || !is_heap_[cur_] || buckets_[cur_].empty()) return -1;
    return buckets_[cur_].front().pixel;
  }
  std::int32_t pop() {  // the pixel of the smallest key; requires !empty()
    while (buckets_[cur_].empty()) {
      is_heap_[cur_] = 0;
      ++cur_;
    }
    auto& v = buckets_[cur_];
    if (!is_heap_[cur_]) {
      std::make_heap(v.begin(), v.end(), std::greater<QueueEntry>());
      is_heap_[cur_] = 1;
    }
    const std::int32_t pixel = heap_pop(v);
    --size_;
    return pixel;
  }

 private:
  static constexpr int kShift = 16;  // 2^16 buckets at most: 128 per octave of elevation
  std::uint32_t lo_;
  std::vector<std::vector<QueueEntry>> buckets_;
  std::vector<std::uint8_t> is_heap_;
  std::size_t cur_;
  std::size_t size_ = 0;
};

// What the flood reads and writes per pixel, side by side in 8 bytes (the flood visits pixels in
// elevation order, all over the tile, so nearly every visit is a cache miss; a tile's states fit the
// caches better at 8 bytes than at 16): the elevation, and the label with two flags in its top bits.
// The climb rule's "from" elevation, read only where two floods meet, is kept apart.
struct PixelState {
  float elevation;
  std::uint32_t label_flags;  // label | kSeed | kDone
};

constexpr std::uint32_t kSeed = 1u << 30, kDone = 1u << 31, kLabelBits = kSeed - 1;

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
  if (h * w >= (std::ptrdiff_t{1} << 31))
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

  // per-thread scratch, reused across calls: fresh pages for every tile cost more (page faults and
  // zeroing) than the flood's own work on them
  thread_local std::vector<PixelState> px_state;
  thread_local std::vector<float> px_from;  // climb: the elevation of the pixel that claimed this one
  px_state.resize(static_cast<std::size_t>(n));
  if (climb) px_from.resize(static_cast<std::size_t>(n));
  std::uint32_t key_lo = 0xffffffffu, key_hi = 0;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float v = elevation[i];
    if (!std::isfinite(v))
      throw std::invalid_argument("seeded_watershed: elevation must be finite, got " + std::to_string(v) +
                                  " at pixel " + std::to_string(i));
    const std::uint32_t k = orderable(v + 0.0f);
    key_lo = std::min(key_lo, k);
    key_hi = std::max(key_hi, k);
    px_state[static_cast<std::size_t>(i)] = PixelState{v + 0.0f, 0};
  }
  FloodQueue queue(key_lo, key_hi);
  std::uint32_t age = 0;  // every pixel is pushed at most once: ages < n < 2^31
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const std::int32_t m = markers[i];
    if (m < 0 || m > n_labels)
      throw std::invalid_argument("seeded_watershed: marker " + std::to_string(m) + " at pixel " + std::to_string(i) +
                                  " is outside 0.." + std::to_string(n_labels));
    if (m > 0) {
      px_state[static_cast<std::size_t>(i)].label_flags = static_cast<std::uint32_t>(m) | kSeed;
      queue.push(orderable(px_state[static_cast<std::size_t>(i)].elevation), age++, static_cast<std::int32_t>(i));
    }
  }
  if (limit)
    for (std::int32_t k = 1; k <= n_labels; ++k) {
      const double fx = centre_frac[2 * k], fy = centre_frac[2 * k + 1];
      if (!(fx >= 0.0 && fx < 1.0 && fy >= 0.0 && fy < 1.0))
        throw std::invalid_argument("seeded_watershed: centre_frac of label " + std::to_string(k) +
                                    " must be in [0, 1), got " + std::to_string(fx) + ", " + std::to_string(fy));
    }

  // neighbours in scikit-image's order: up, left, right, down, then the diagonals (8-connectivity)
  const std::ptrdiff_t dys[8] = {-1, 0, 0, 1, -1, -1, 1, 1}, dxs[8] = {0, -1, 1, 0, -1, 1, -1, 1};
  std::ptrdiff_t offsets[8];
  for (int k = 0; k < 8; ++k) offsets[k] = dys[k] * w + dxs[k];
  PixelState* st = px_state.data();
  float* from = climb ? px_from.data() : nullptr;
  while (!queue.empty()) {
    const std::ptrdiff_t p = queue.pop();
    {  // the flood jumps around the tile: fetch the next pixel's rows while this one is processed
#if defined(__GNUC__) || defined(__clang__)
      const std::ptrdiff_t nxt = queue.peek();
      if (nxt >= 0) {
        __builtin_prefetch(st + nxt);
        if (nxt >= w) __builtin_prefetch(st + nxt - w);
        if (nxt + w < n) __builtin_prefetch(st + nxt + w);
      }
#endif
    }
    const std::uint32_t lf = st[p].label_flags;
    const std::uint32_t label = lf & kLabelBits;
    const std::ptrdiff_t py = p / w, px = p - py * w;
    const float ep = st[p].elevation;
    const bool on_barrier = !(lf & kSeed) && ep >= barrier;
    if (climb) st[p].label_flags = lf | kDone;
    std::int32_t bx = 0, by = 0;
    double fx = 0.0, fy = 0.0;
    if (limit) {
      bx = centre_base[2 * label];
      by = centre_base[2 * label + 1];
      fx = centre_frac[2 * label];
      fy = centre_frac[2 * label + 1];
    }
    for (int k = 0; k < connectivity; ++k) {
      const std::ptrdiff_t qy = py + dys[k], qx = px + dxs[k];
      if (qy < 0 || qy >= h || qx < 0 || qx >= w) continue;
      const std::ptrdiff_t q = p + offsets[k];
      PixelState& sq = st[q];
      bool steal = false;
      if (sq.label_flags != 0) {
        // climb: a waiting pixel goes to the flood that reaches it from higher ground, still climbing
        // (seeds and popped pixels carry a flag, so their label_flags never equal a bare label)
        if (!climb || sq.label_flags == label || (sq.label_flags & ~kLabelBits) != 0 || !(ep > from[q]) ||
            !(ep < sq.elevation))
          continue;
        steal = true;
      }
      if (mask != nullptr && mask[q] == 0) continue;
      if (on_barrier && !(sq.elevation >= barrier)) continue;
      if (limit) {
        const double dx = static_cast<double>(qx - bx) - fx;
        const double dy = static_cast<double>(qy - by) - fy;
        if (dx * dx + dy * dy > r2) continue;
      }
      sq.label_flags = label;
      if (climb) from[q] = ep;
      // a stolen pixel is already queued (its key does not depend on who claimed it)
      if (!steal) queue.push(orderable(sq.elevation), age++, static_cast<std::int32_t>(q));
    }
  }
  for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = static_cast<std::int32_t>(st[i].label_flags & kLabelBits);
  // keep a tile's worth of scratch per thread, not the largest image ever flooded
  if (px_state.capacity() > (std::size_t{8} << 20)) {
    std::vector<PixelState>().swap(px_state);
    std::vector<float>().swap(px_from);
  }
}

}  // namespace her2fast
