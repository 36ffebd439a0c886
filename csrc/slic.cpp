#include "slic.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "big_alloc.hpp"
#include "simd_dispatch.hpp"

namespace her2fast {
namespace {

// Cube root for x >= ~1e-3 in float: bit-level first guess, three Newton steps (rel. error < 1e-7).
inline float cbrt_positive(float x) {
  std::uint32_t i;
  std::memcpy(&i, &x, sizeof i);
  i = i / 3u + 709921077u;
  float y;
  std::memcpy(&y, &i, sizeof y);
  for (int k = 0; k < 3; ++k) y = (2.0f * y + x / (y * y)) * (1.0f / 3.0f);
  return y;
}

// One row of RGB -> CIELAB: sRGB -> linear through `linear` (256 entries, the rescale folded in),
// linear RGB -> XYZ / white, XYZ -> Lab. Two loops, so that the compiler vectorises both (the
// first with gathers where the CPU has them); the arithmetic is the same in every lane.
HER2FAST_HOT void rgb_row_to_lab(const std::uint8_t* __restrict rgb, std::ptrdiff_t w, const float* __restrict linear,
                                 float* __restrict X, float* __restrict Y, float* __restrict Z) {
  const float wx = 1.0f / 0.95047f, wz = 1.0f / 1.08883f;
  for (std::ptrdiff_t x = 0; x < w; ++x) {
    const float r = linear[rgb[3 * x]], g = linear[rgb[3 * x + 1]], b = linear[rgb[3 * x + 2]];
    X[x] = (0.412453f * r + 0.357580f * g + 0.180423f * b) * wx;
    Y[x] = 0.212671f * r + 0.715160f * g + 0.072169f * b;
    Z[x] = (0.019334f * r + 0.119193f * g + 0.950227f * b) * wz;
  }
  const float thr = 0.008856f;
  for (std::ptrdiff_t x = 0; x < w; ++x) {
    const float tx = X[x], ty = Y[x], tz = Z[x];
    const float fx = tx > thr ? cbrt_positive(std::max(tx, thr)) : 7.787f * tx + 16.0f / 116.0f;
    const float fy = ty > thr ? cbrt_positive(std::max(ty, thr)) : 7.787f * ty + 16.0f / 116.0f;
    const float fz = tz > thr ? cbrt_positive(std::max(tz, thr)) : 7.787f * tz + 16.0f / 116.0f;
    X[x] = 116.0f * fy - 16.0f;  // L
    Y[x] = 500.0f * (fx - fy);   // a
    Z[x] = 200.0f * (fy - fz);   // b
  }
}

// For each 8-bit mask: the positions of its set bits, lowest first, and how many there are.
struct BitPositions {
  std::uint8_t pos[256][8] = {};
  std::uint8_t count[256] = {};
  constexpr BitPositions() {
    for (int m = 0; m < 256; ++m) {
      int c = 0;
      for (int j = 0; j < 8; ++j)
        if (m & (1 << j)) pos[m][c++] = static_cast<std::uint8_t>(j);
      count[m] = static_cast<std::uint8_t>(c);
    }
  }
};
constexpr BitPositions kBitPositions{};

// Ends (exclusive) of the runs of equal labels in lab[0..w): ends[0..n), returns n. lab[w] must
// hold a sentinel that differs from lab[w - 1]; `flags` and `ends` need room for w + 8.
// Branch-free: the label changes are flagged (vectorised), packed 8 to a byte, and each byte's
// set bits become run ends through a table.
inline std::ptrdiff_t run_ends(const std::int32_t* __restrict lab, std::ptrdiff_t w, std::uint8_t* __restrict flags,
                               std::int32_t* __restrict ends) {
  for (std::ptrdiff_t x = 0; x < w; ++x) flags[x] = lab[x] != lab[x + 1];
  for (std::ptrdiff_t x = w; x < w + 8; ++x) flags[x] = 0;
  std::ptrdiff_t n = 0;
  for (std::ptrdiff_t x = 0; x < w; x += 8) {
    std::uint64_t v;
    std::memcpy(&v, flags + x, sizeof v);
    const unsigned m = static_cast<unsigned>((v * 0x0102040810204080ull) >> 56);  // byte j (0/1) -> bit j
    for (int j = 0; j < 8; ++j) ends[n + j] = static_cast<std::int32_t>(x + 1 + kBitPositions.pos[m][j]);
    n += kBitPositions.count[m];
  }
  return n;
}

// Eight float lanes. With GCC/clang a vector type (one AVX register or two SSE ones, whichever
// clone runs: lane by lane the arithmetic is the same); elsewhere, or with SLIC_NO_VECTOR_EXT
// defined (to check that both give the same labels), a plain array.
#if defined(__GNUC__) && !defined(SLIC_NO_VECTOR_EXT)
typedef float Lanes8 __attribute__((vector_size(32), aligned(4)));  // not over-aligned (std::vector)
typedef std::int32_t Ints8 __attribute__((vector_size(32), aligned(4)));
// acc += p[0..8) in lanes j < n (the other lanes add nothing).
inline void add_first(Lanes8& acc, const float* p, int n) {
  const Ints8 iota = {0, 1, 2, 3, 4, 5, 6, 7};
  Ints8 bits;
  std::memcpy(&bits, p, sizeof bits);
  bits &= iota < n;
  Lanes8 v;
  std::memcpy(&v, &bits, sizeof v);
  acc += v;
}
inline float fold8(const Lanes8& s) { return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); }
#else
struct Lanes8 {
  float v[8];
  Lanes8& operator+=(const Lanes8& o) {
    for (int j = 0; j < 8; ++j) v[j] += o.v[j];
    return *this;
  }
};
inline void add_first(Lanes8& acc, const float* p, int n) {
  for (int j = 0; j < 8; ++j) acc.v[j] += j < n ? p[j] : 0.0f;
}
inline float fold8(const Lanes8& s) {
  return ((s.v[0] + s.v[1]) + (s.v[2] + s.v[3])) + ((s.v[4] + s.v[5]) + (s.v[6] + s.v[7]));
}
#endif

// One row of the assignment step for centre k over whole vectors of 8 pixels: n8 = wlen rounded up
// to 8, T[i] = wxy * dx^2 of the window's columns and +inf past its end (so those lanes are never
// taken: the row's other pixels are written back unchanged). d sums the same terms in the same
// order as a pixel-by-pixel loop: ((dl^2 + da^2) + db^2) + wxy dx^2 + dy2.
#if defined(__GNUC__)
__attribute__((always_inline))  // into each SIMD clone of sweep_row
#endif
inline void
assign_row(const float* __restrict L, const float* __restrict A, const float* __restrict B, const float* __restrict T,
           float* __restrict dist, std::int32_t* __restrict lab, std::ptrdiff_t n8, float cl, float ca, float cb,
           float dy2, std::int32_t k) {
#if defined(__GNUC__) && !defined(SLIC_NO_VECTOR_EXT)
  const Lanes8 zero = {};
  const Lanes8 vl = zero + cl, va = zero + ca, vb = zero + cb, vdy = zero + dy2;
  const Ints8 vk = Ints8{} + k;
  for (std::ptrdiff_t i = 0; i < n8; i += 8) {
    Lanes8 l, a, b, t, old;
    std::memcpy(&l, L + i, sizeof l);
    std::memcpy(&a, A + i, sizeof a);
    std::memcpy(&b, B + i, sizeof b);
    std::memcpy(&t, T + i, sizeof t);
    std::memcpy(&old, dist + i, sizeof old);
    const Lanes8 dl = l - vl, da = a - va, db = b - vb;
    const Lanes8 d = dl * dl + da * da + db * db + t + vdy;
    const Ints8 take = d < old;  // all ones where d is nearer
    const Lanes8 nd = d < old ? d : old;
    Ints8 was;
    std::memcpy(&was, lab + i, sizeof was);
    const Ints8 now = take ? vk : was;
    std::memcpy(dist + i, &nd, sizeof nd);
    std::memcpy(lab + i, &now, sizeof now);
  }
#else
  for (std::ptrdiff_t i = 0; i < n8; ++i) {
    const float dl = L[i] - cl, da = A[i] - ca, db = B[i] - cb;
    const float d = dl * dl + da * da + db * db + T[i] + dy2;
    if (d < dist[i]) {
      dist[i] = d;
      lab[i] = k;
    }
  }
#endif
}

// Centre sums of one k-means iteration: L, a, b in 8 lanes (lane j: pixels j, j + 8, ... of each
// run, so a run is a few whole vector adds with no per-pixel loop; folded in a fixed order at the
// end, so the sums do not depend on the CPU); pixel count; sums of x and y.
struct Sums {
  Lanes8 l, a, b;
  std::int64_t n, x, y;
};

struct Centre {
  float l, a, b, y, x;
};

// Ends the assignment of a row: pixels that no window reached (dist still +inf) or outside the
// mask (dist -1) keep their label from `labels`; `cur` and `labels` then both hold the new row.
// Returns whether any label changed.
inline bool finish_row(const float* __restrict dist, std::int32_t* __restrict cur, std::int32_t* __restrict labels,
                       std::ptrdiff_t w) {
  const float inf = std::numeric_limits<float>::infinity();
  std::int32_t diff = 0;
  for (std::ptrdiff_t x = 0; x < w; ++x) {
    const std::int32_t v = dist[x] >= 0.0f && dist[x] < inf ? cur[x] : labels[x];
    diff |= v ^ labels[x];
    labels[x] = v;
    cur[x] = v;
  }
  return diff != 0;
}

struct Run {
  std::int32_t y, x0, x1;  // pixels [x0, x1) of row y
  std::int32_t label;
};

// One assigned row: its runs of equal labels go to out[0..n) (returns n) and
// are added to the centre sums (labels < 0: pixels no window reached, or outside the mask).
// lab[w] must hold a sentinel (a label no pixel has); L, A, B must be readable 7 floats past w;
// flags and ends are scratch for run_ends.
inline std::ptrdiff_t runs_and_sums(const std::int32_t* __restrict lab, std::ptrdiff_t w, std::int32_t y,
                                    const float* __restrict L, const float* __restrict A, const float* __restrict B,
                                    std::uint8_t* __restrict flags, std::int32_t* __restrict ends, Sums* __restrict acc,
                                    Run* __restrict out) {
  const std::ptrdiff_t n_runs = run_ends(lab, w, flags, ends);
  std::int32_t x0 = 0;
  for (std::ptrdiff_t r = 0; r < n_runs; ++r) {
    const std::int32_t x1 = ends[r];
    const std::int32_t k = lab[x0];
    out[r] = {y, x0, x1, k};
    if (k >= 0) {
      Sums& a = acc[k];
      for (std::int32_t i = x0; i < x1; i += 8) {  // whole vectors; lanes past the run add +0
        const int m = std::min(8, x1 - i);
        add_first(a.l, L + i, m);
        add_first(a.a, A + i, m);
        add_first(a.b, B + i, m);
      }
      const std::int64_t len = x1 - x0;
      a.n += len;
      a.x += (static_cast<std::int64_t>(x0) + x1 - 1) * len / 2;
      a.y += y * len;
    }
    x0 = x1;
  }
  return n_runs;
}

inline std::ptrdiff_t whole8(std::ptrdiff_t n) { return (n + 7) & ~std::ptrdiff_t{7}; }

// Per-iteration scratch and window tables shared by the rows of one sweep.
struct Sweep {
  const Centre* centres;
  const std::int32_t* wx0;  // window of centre k: columns [wx0[k], wx0[k] + wlen[k])
  const std::int32_t* wlen;
  const float* T;  // wxy dx^2 per window column, centre k's from toff[k] (see assign_row)
  const std::int32_t* toff;
  float wxy;            // (m / S)^2
  float* dist;          // w + 8, scratch
  std::int32_t* cur;    // w + 8 (cur[w]: sentinel), scratch
  std::uint8_t* flags;  // w + 8, scratch
  std::int32_t* ends;   // w + 8, scratch
  Sums* acc;            // centre sums
};

// One row of a k-means sweep, start to end (one dispatched call per row, the steps inlined):
// assignment by the centres ks[0..n_ks) (in index order) whose window covers row y, new labels
// into `labels` (the row; returns in `changed` whether any changed), and its runs of equal labels
// into out (returns their number) and the centre sums. `inside` (nullable) is the mask row.
HER2FAST_HOT std::ptrdiff_t sweep_row(const Sweep& sw, std::ptrdiff_t y, std::ptrdiff_t w, const float* __restrict L,
                                      const float* __restrict A, const float* __restrict B,
                                      const std::uint8_t* __restrict inside, const std::int32_t* __restrict ks,
                                      std::ptrdiff_t n_ks, std::int32_t* __restrict labels, bool& changed,
                                      Run* __restrict out) {
  const float inf = std::numeric_limits<float>::infinity();
  if (inside != nullptr) {
    for (std::ptrdiff_t x = 0; x < w; ++x) sw.dist[x] = inside[x] ? inf : -1.0f;  // -1: never assigned
  } else {
    for (std::ptrdiff_t x = 0; x < w; ++x) sw.dist[x] = inf;
  }
  const float fy = static_cast<float>(y);
  for (std::ptrdiff_t e = 0; e < n_ks; ++e) {
    const std::int32_t k = ks[e];
    const Centre& c = sw.centres[k];
    const float dy = fy - c.y;
    const std::ptrdiff_t x0 = sw.wx0[k];
    assign_row(L + x0, A + x0, B + x0, sw.T + sw.toff[k], sw.dist + x0, sw.cur + x0, whole8(sw.wlen[k]), c.l, c.a, c.b,
               sw.wxy * dy * dy, k);
  }
  changed |= finish_row(sw.dist, sw.cur, labels, w);
  return runs_and_sums(sw.cur, w, static_cast<std::int32_t>(y), L, A, B, sw.flags, sw.ends, sw.acc, out);
}

// scikit-image's util.regular_grid for a 2-D image (depth 1): start and step per axis.
void regular_grid_2d(std::ptrdiff_t h, std::ptrdiff_t w, double area, int n, std::ptrdiff_t& start_y,
                     std::ptrdiff_t& step_y, std::ptrdiff_t& start_x, std::ptrdiff_t& step_x) {
  double sy, sx;
  if (area <= n) {
    sy = sx = 1.0;
  } else {
    const double s = std::sqrt(area / n);
    sy = sx = s;
    const double small = static_cast<double>(std::min(h, w)), large = static_cast<double>(std::max(h, w));
    if (small < s) {  // a thin image: one row of seeds along the long axis
      const double s_long = large * (area / (static_cast<double>(h) * static_cast<double>(w))) / n;
      if (h <= w) {
        sy = small;
        sx = std::max(1.0, s_long);
      } else {
        sx = small;
        sy = std::max(1.0, s_long);
      }
    }
  }
  start_y = static_cast<std::ptrdiff_t>(std::floor(sy / 2.0));
  start_x = static_cast<std::ptrdiff_t>(std::floor(sx / 2.0));
  step_y = std::max<std::ptrdiff_t>(1, static_cast<std::ptrdiff_t>(std::nearbyint(sy)));
  step_x = std::max<std::ptrdiff_t>(1, static_cast<std::ptrdiff_t>(std::nearbyint(sx)));
}

using detail::allocate_big;

// Per-thread scratch kept between calls, one slot per buffer role: a pipeline thread that runs
// SLIC tile after tile reuses memory whose pages are already mapped, instead of faulting in (and
// the kernel zeroing) fresh pages on every call -- which also serialises threads on the page-fault
// path. Only the contents of a buffer while a call runs matter (every element is written before it
// is read), so reuse cannot change a result. A slot keeps at most kScratchCap bytes; bigger
// requests get a fresh allocation, freed on return.
enum ScratchSlot { kScratchLab = 0, kScratchRuns = 1, kScratchTables = 2, kScratchSlots = 3 };
constexpr std::size_t kScratchCap = std::size_t{64} << 20;

struct ThreadScratch {
  void* p[kScratchSlots] = {};
  std::size_t bytes[kScratchSlots] = {};
  bool busy[kScratchSlots] = {};
  ~ThreadScratch() {
    for (void* q : p) std::free(q);
  }
};
thread_local ThreadScratch tl_scratch;

// Uninitialised storage for n trivial T (the Lab image, the runs, the connectivity tables), from the
// thread's scratch slot when it fits, else freshly allocated. Untouched capacity costs nothing.
template <class T>
class BigBuffer {
 public:
  BigBuffer(std::size_t n, ScratchSlot slot) {
    const std::size_t bytes = std::max<std::size_t>(1, n) * sizeof(T);
    ThreadScratch& ts = tl_scratch;
    if (bytes <= kScratchCap && !ts.busy[slot]) {
      if (ts.bytes[slot] < bytes) {
        std::free(ts.p[slot]);
        ts.p[slot] = nullptr;
        ts.bytes[slot] = 0;
        ts.p[slot] = allocate_big(bytes);
        ts.bytes[slot] = bytes;
      }
      ts.busy[slot] = true;
      slot_ = slot;
      p_ = static_cast<T*>(ts.p[slot]);
      return;
    }
    p_ = static_cast<T*>(allocate_big(bytes));
  }
  ~BigBuffer() {
    if (slot_ >= 0)
      tl_scratch.busy[slot_] = false;
    else
      std::free(p_);
  }
  BigBuffer(const BigBuffer&) = delete;
  BigBuffer& operator=(const BigBuffer&) = delete;
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
  int slot_ = -1;
};

// Union-find over runs; the root of a set is its smallest run index, i.e. the run that comes first
// in raster order, so components are numbered in the order a raster scan meets them.
std::int32_t find_root(std::int32_t* parent, std::int32_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

void unite(std::int32_t* parent, std::int32_t a, std::int32_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a == b) return;
  if (a < b)
    parent[b] = a;
  else
    parent[a] = b;
}

}  // namespace

namespace {

// Steps 2-4 of enforce_connectivity on runs of equal labels (row_start[y] = first run of row y,
// row_start[h] = number of runs); writes the new labels of the run pixels and returns K.
int connect_runs(const Run* rs, const std::vector<std::int32_t>& row_start, std::int32_t* labels, std::ptrdiff_t h,
                 std::ptrdiff_t w, std::ptrdiff_t min_size) {
  const std::int32_t n_runs = row_start[static_cast<std::size_t>(h)];
  const std::size_t nr = static_cast<std::size_t>(n_runs);
  const BigBuffer<std::int32_t> tables(3 * nr, kScratchTables);
  std::int32_t* const parent = tables.get();  // union-find forest, then the root of each run
  std::int32_t* const size = parent + nr;     // pixels per component (at its root)
  std::int32_t* const label = size + nr;      // per component: earliest earlier neighbour, then final label
  // Calls f(c, a) for every pair of 4-adjacent runs c < a: side by side in a row, or overlapping
  // columns in consecutive rows.
  auto for_adjacent = [&](auto&& f) {
    for (std::ptrdiff_t y = 0; y < h; ++y) {
      const std::int32_t a0 = row_start[static_cast<std::size_t>(y)];
      const std::int32_t a_end = row_start[static_cast<std::size_t>(y) + 1];
      for (std::int32_t a = a0; a + 1 < a_end; ++a)
        if (rs[a].x1 == rs[a + 1].x0) f(a, a + 1);
      if (y == 0) continue;
      std::int32_t b = row_start[static_cast<std::size_t>(y) - 1];
      const std::int32_t b_end = a0;
      for (std::int32_t a = a0; a < a_end; ++a) {
        while (b < b_end && rs[b].x1 <= rs[a].x0) ++b;
        for (std::int32_t c = b; c < b_end && rs[c].x0 < rs[a].x1; ++c) f(c, a);
      }
    }
  };
  // 2. Connected components: unite adjacent runs of the same label.
  for (std::int32_t i = 0; i < n_runs; ++i) parent[i] = i;
  for_adjacent([&](std::int32_t c, std::int32_t a) {
    if (rs[c].label == rs[a].label) unite(parent, c, a);
  });
  // 3. Component sizes; components in raster order of their first pixel (root = first run).
  std::fill(size, size + nr, 0);
  for (std::int32_t i = 0; i < n_runs; ++i) {
    const std::int32_t r = find_root(parent, i);
    parent[i] = r;
    size[r] += rs[i].x1 - rs[i].x0;
  }
  // 4. In raster order, a component smaller than min_size joins the first-met neighbouring component
  //    that comes before it (as Achanta's EnforceLabelConnectivity); the others get new labels.
  //    `label` first holds, per component, the earliest adjacent earlier component (-1: none) and
  //    is then overwritten, in raster order, by the final label.
  std::fill(label, label + nr, -1);
  for_adjacent([&](std::int32_t c, std::int32_t a) {
    const std::int32_t ra = parent[c], rb = parent[a];
    if (ra == rb) return;
    const std::int32_t lo = std::min(ra, rb), hi = std::max(ra, rb);
    std::int32_t& e = label[hi];
    if (e < 0 || lo < e) e = lo;
  });
  // The largest component of each input label (its "main body"; ties: the first in raster order)
  // keeps a superpixel of its own unless it is tiny (< min_size / 4): only detached fragments merge.
  // Without this rule a k-means cluster whose body is ragged (textured IHC, low compactness) can
  // vanish entirely, and the superpixel count drops far below n_segments.
  std::unordered_map<std::int32_t, std::int32_t> main_of;  // input label -> root of its largest component
  for (std::int32_t r = 0; r < n_runs; ++r) {
    if (parent[r] != r || rs[r].label < 0) continue;  // label < 0: pixels no centre reached, never a body
    auto [it, inserted] = main_of.try_emplace(rs[r].label, r);
    if (!inserted && size[r] > size[it->second]) it->second = r;
  }
  const std::ptrdiff_t tiny = min_size / 4;
  std::int32_t next_label = 0;
  for (std::int32_t r = 0; r < n_runs; ++r) {
    if (parent[r] != r) continue;
    const std::int32_t e = label[r];  // e < r: already a final label
    const bool body = rs[r].label >= 0 && main_of[rs[r].label] == r && size[r] >= tiny;
    label[r] = size[r] < min_size && e >= 0 && !body ? label[e] : next_label++;
  }
  for (std::int32_t i = 0; i < n_runs; ++i) {
    const std::int32_t v = label[parent[i]];
    std::int32_t* p = labels + static_cast<std::ptrdiff_t>(rs[i].y) * w;
    for (std::int32_t x = rs[i].x0; x < rs[i].x1; ++x) p[x] = v;
  }
  return next_label;
}

}  // namespace

int enforce_connectivity(std::int32_t* labels, std::ptrdiff_t h, std::ptrdiff_t w, const std::uint8_t* inside,
                         std::ptrdiff_t min_size) {
  if (labels == nullptr || inside == nullptr) throw std::invalid_argument("enforce_connectivity: null pointer");
  if (h < 1 || w < 1) throw std::invalid_argument("enforce_connectivity: empty image");
  if (h * w > std::numeric_limits<std::int32_t>::max())
    throw std::invalid_argument("enforce_connectivity: image too large for int32 labels");
  // 1. Runs of equal label along rows (inside pixels only); row_start[y] = first run of row y.
  std::vector<Run> runs;
  std::vector<std::int32_t> row_start(static_cast<std::size_t>(h) + 1);
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    row_start[static_cast<std::size_t>(y)] = static_cast<std::int32_t>(runs.size());
    const std::int32_t* lr = labels + y * w;
    const std::uint8_t* in = inside + y * w;
    std::ptrdiff_t x = 0;
    while (x < w) {
      if (!in[x]) {
        ++x;
        continue;
      }
      const std::ptrdiff_t x0 = x;
      const std::int32_t k = lr[x];
      while (x < w && in[x] && lr[x] == k) ++x;
      runs.push_back({static_cast<std::int32_t>(y), static_cast<std::int32_t>(x0), static_cast<std::int32_t>(x), k});
    }
  }
  row_start[static_cast<std::size_t>(h)] = static_cast<std::int32_t>(runs.size());
  return connect_runs(runs.data(), row_start, labels, h, w, min_size);
}

int slic(const std::uint8_t* rgb, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t row_stride,
         const std::uint8_t* mask, std::ptrdiff_t mask_stride, const SlicParams& prm, std::int32_t* labels) {
  if (rgb == nullptr || labels == nullptr) throw std::invalid_argument("slic: null image or labels pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("slic: image must not be empty, got " + std::to_string(h) + "x" + std::to_string(w));
  if (row_stride < 3 * w) throw std::invalid_argument("slic: row_stride " + std::to_string(row_stride) + " < 3*width");
  if (mask != nullptr && mask_stride < w)
    throw std::invalid_argument("slic: mask_stride " + std::to_string(mask_stride) + " < width");
  if (prm.n_segments < 1)
    throw std::invalid_argument("slic: n_segments must be >= 1, got " + std::to_string(prm.n_segments));
  if (!(std::isfinite(prm.compactness) && prm.compactness > 0))
    throw std::invalid_argument("slic: compactness must be finite and > 0, got " + std::to_string(prm.compactness));
  if (prm.max_iter < 1) throw std::invalid_argument("slic: max_iter must be >= 1, got " + std::to_string(prm.max_iter));
  if (!(prm.min_size_factor >= 0 && prm.min_size_factor <= 1))
    throw std::invalid_argument("slic: min_size_factor must be in [0, 1], got " + std::to_string(prm.min_size_factor));

  const std::ptrdiff_t n = h * w;
  const std::size_t nz = static_cast<std::size_t>(n);
  std::vector<std::uint8_t> inside(mask != nullptr ? nz : 0);  // only with a mask: see in_mask
  auto in_mask = [&](std::ptrdiff_t p) { return mask == nullptr || inside[static_cast<std::size_t>(p)] != 0; };
  std::ptrdiff_t area = n;
  if (mask != nullptr) {
    area = 0;
    for (std::ptrdiff_t y = 0; y < h; ++y)
      for (std::ptrdiff_t x = 0; x < w; ++x) {
        const std::uint8_t v = mask[y * mask_stride + x] != 0;
        inside[static_cast<std::size_t>(y * w + x)] = v;
        area += v;
      }
  }
  std::fill(labels, labels + n, -1);
  if (area == 0) return 0;

  // 1. Colour: min-max rescale over the pixels that take part (as scikit-image), sRGB -> linear via
  //    a 256-entry table, linear RGB -> XYZ / white, XYZ -> Lab.
  int vmin = 255, vmax = 0;
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const std::uint8_t* row = rgb + y * row_stride;
    if (mask == nullptr) {
      std::uint8_t lo = 255, hi = 0;
      for (std::ptrdiff_t i = 0; i < 3 * w; ++i) {
        lo = std::min(lo, row[i]);
        hi = std::max(hi, row[i]);
      }
      vmin = std::min<int>(vmin, lo);
      vmax = std::max<int>(vmax, hi);
      continue;
    }
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      if (!in_mask(y * w + x)) continue;
      for (int c = 0; c < 3; ++c) {
        vmin = std::min<int>(vmin, row[3 * x + c]);
        vmax = std::max<int>(vmax, row[3 * x + c]);
      }
    }
  }
  float linear[256];
  for (int v = 0; v < 256; ++v) {
    const double t = vmax > vmin ? std::clamp(static_cast<double>(v - vmin) / (vmax - vmin), 0.0, 1.0) : 0.0;
    linear[v] = static_cast<float>(t > 0.04045 ? std::pow((t + 0.055) / 1.055, 2.4) : t / 12.92);
  }
  // Planes L, a, b of nz + 8 floats (the 8 extra are zero: the centre sums read whole vectors of 8
  // from the start of a run); every other element is written by rgb_row_to_lab.
  const BigBuffer<float> lab_buf(3 * (nz + 8), kScratchLab);
  float* const L = lab_buf.get();
  float* const A = L + nz + 8;
  float* const B = A + nz + 8;
  std::fill(L + nz, L + nz + 8, 0.0f);
  std::fill(A + nz, A + nz + 8, 0.0f);
  std::fill(B + nz, B + nz + 8, 0.0f);
  for (std::ptrdiff_t y = 0; y < h; ++y)
    rgb_row_to_lab(rgb + y * row_stride, w, linear, L + y * w, A + y * w, B + y * w);

  // 2. Seeds on scikit-image's regular grid, moved to the lowest gradient in 3x3.
  std::ptrdiff_t sy0, sty, sx0, stx;
  regular_grid_2d(h, w, static_cast<double>(area), prm.n_segments, sy0, sty, sx0, stx);
  const std::ptrdiff_t step = std::max(sty, stx);
  auto gradient = [&](std::ptrdiff_t y, std::ptrdiff_t x) -> double {
    if (y < 1 || x < 1 || y + 1 >= h || x + 1 >= w) return std::numeric_limits<double>::infinity();
    const std::size_t l = static_cast<std::size_t>(y * w + x - 1), r = l + 2;
    const std::size_t u = static_cast<std::size_t>((y - 1) * w + x), d = static_cast<std::size_t>((y + 1) * w + x);
    const double g1 = (L[r] - L[l]) * (L[r] - L[l]) + (A[r] - A[l]) * (A[r] - A[l]) + (B[r] - B[l]) * (B[r] - B[l]);
    const double g2 = (L[d] - L[u]) * (L[d] - L[u]) + (A[d] - A[u]) * (A[d] - A[u]) + (B[d] - B[u]) * (B[d] - B[u]);
    return g1 + g2;
  };
  std::vector<Centre> centres;
  for (std::ptrdiff_t y = sy0; y < h; y += sty) {
    for (std::ptrdiff_t x = sx0; x < w; x += stx) {
      if (!in_mask(y * w + x)) continue;
      std::ptrdiff_t by = y, bx = x;
      double best = gradient(y, x);
      for (std::ptrdiff_t dy = -1; dy <= 1; ++dy)
        for (std::ptrdiff_t dx = -1; dx <= 1; ++dx) {
          const std::ptrdiff_t yy = y + dy, xx = x + dx;
          if (yy < 0 || xx < 0 || yy >= h || xx >= w || !in_mask(yy * w + xx)) continue;
          const double g = gradient(yy, xx);
          if (g < best) {
            best = g;
            by = yy;
            bx = xx;
          }
        }
      const std::size_t p = static_cast<std::size_t>(by * w + bx);
      centres.push_back({L[p], A[p], B[p], static_cast<float>(by), static_cast<float>(bx)});
    }
  }
  if (centres.empty()) {  // a mask with no grid point inside: one seed at the first mask pixel
    for (std::ptrdiff_t p = 0; p < n; ++p)
      if (in_mask(p)) {
        const std::size_t q = static_cast<std::size_t>(p);
        centres.push_back({L[q], A[q], B[q], static_cast<float>(p / w), static_cast<float>(p % w)});
        break;
      }
  }
  const std::ptrdiff_t n_seeds = static_cast<std::ptrdiff_t>(centres.size());

  // 3. Local k-means, swept row by row: for each row, every centre whose window covers it updates
  //    that row segment (centres in index order, so a pixel ties to the lower index exactly as a
  //    centre-by-centre sweep would), then the finished row is compared with the previous labels,
  //    cut into runs of equal label and added to the centre sums while it is still in L1. The
  //    distance and label scratch is one row, not the image.
  const std::ptrdiff_t win = step < 10 ? (3 * step + 1) / 2 : step;  // Achanta: 1.5 S for small S
  const float wxy = static_cast<float>((prm.compactness / step) * (prm.compactness / step));
  const std::size_t wz = static_cast<std::size_t>(w);
  std::vector<float> dist(wz + 8);            // per row: +inf inside, -1 outside (never assigned)
  std::vector<std::int32_t> cur(wz + 8, -2);  // labels of the row being assigned; cur[w]: sentinel
  std::vector<std::int32_t> toff(static_cast<std::size_t>(n_seeds));
  std::vector<float> T;                     // per centre: wxy dx^2 of its window's columns, +inf up to a whole vector
  std::vector<std::int32_t> ends(wz + 8);   // run ends of the row
  std::vector<std::uint8_t> flags(wz + 8);  // label changes along the row
  std::vector<Sums> acc(static_cast<std::size_t>(n_seeds));
  // The runs of the last sweep, kept for the connectivity step (which needs exactly these when
  // every pixel takes part).
  const BigBuffer<Run> runs(nz, kScratchRuns);  // at most one run per pixel; only the pages used are touched
  std::size_t n_runs_total = 0;
  std::vector<std::int32_t> row_start(static_cast<std::size_t>(h) + 1);
  // Windows of this iteration: columns [wx0, wx0 + wlen), rows [wy0, wy1]; rows_first/row_centres
  // list, per image row, the centres whose window covers it (in index order).
  std::vector<std::int32_t> wx0(static_cast<std::size_t>(n_seeds)), wlen(static_cast<std::size_t>(n_seeds));
  std::vector<std::int32_t> wy0(static_cast<std::size_t>(n_seeds)), wy1(static_cast<std::size_t>(n_seeds));
  std::vector<std::int32_t> rows_first(static_cast<std::size_t>(h) + 1), row_centres;
  std::vector<std::int32_t> fill_at(static_cast<std::size_t>(h));
  for (int it = 0; it < prm.max_iter; ++it) {
    std::fill(rows_first.begin(), rows_first.end(), 0);
    for (std::ptrdiff_t k = 0; k < n_seeds; ++k) {
      const Centre& c = centres[static_cast<std::size_t>(k)];
      const std::ptrdiff_t cy = static_cast<std::ptrdiff_t>(std::lround(c.y));
      const std::ptrdiff_t cx = static_cast<std::ptrdiff_t>(std::lround(c.x));
      const std::ptrdiff_t y0 = std::max<std::ptrdiff_t>(0, cy - win), y1 = std::min<std::ptrdiff_t>(h - 1, cy + win);
      const std::ptrdiff_t x0 = std::max<std::ptrdiff_t>(0, cx - win), x1 = std::min<std::ptrdiff_t>(w - 1, cx + win);
      const std::size_t kz = static_cast<std::size_t>(k);
      wx0[kz] = static_cast<std::int32_t>(x0);
      wlen[kz] = static_cast<std::int32_t>(x1 - x0 + 1);
      wy0[kz] = static_cast<std::int32_t>(y0);
      wy1[kz] = static_cast<std::int32_t>(y1);
      for (std::ptrdiff_t y = y0; y <= y1; ++y) ++rows_first[static_cast<std::size_t>(y) + 1];
    }
    for (std::size_t y = 0; y < static_cast<std::size_t>(h); ++y) rows_first[y + 1] += rows_first[y];
    row_centres.resize(static_cast<std::size_t>(rows_first[static_cast<std::size_t>(h)]));
    std::copy(rows_first.begin(), rows_first.end() - 1, fill_at.begin());
    for (std::int32_t k = 0; k < n_seeds; ++k)
      for (std::int32_t y = wy0[static_cast<std::size_t>(k)]; y <= wy1[static_cast<std::size_t>(k)]; ++y)
        row_centres[static_cast<std::size_t>(fill_at[static_cast<std::size_t>(y)]++)] = k;

    bool changed = false;
    std::fill(acc.begin(), acc.end(), Sums{});
    n_runs_total = 0;
    std::size_t t_size = 0;
    for (std::size_t k = 0; k < static_cast<std::size_t>(n_seeds); ++k) {
      toff[k] = static_cast<std::int32_t>(t_size);
      t_size += static_cast<std::size_t>(whole8(wlen[k]));
    }
    T.assign(t_size, std::numeric_limits<float>::infinity());
    for (std::size_t k = 0; k < static_cast<std::size_t>(n_seeds); ++k) {
      const float cx = centres[k].x;
      float* tk = T.data() + toff[k];
      for (std::int32_t j = 0; j < wlen[k]; ++j) {
        const float dx = static_cast<float>(wx0[k] + j) - cx;
        tk[j] = wxy * (dx * dx);
      }
    }
    const Sweep sweep{centres.data(), wx0.data(), wlen.data(),  T.data(),    toff.data(), wxy,
                      dist.data(),    cur.data(), flags.data(), ends.data(), acc.data()};
    for (std::ptrdiff_t y = 0; y < h; ++y) {
      // The row's runs go to the end of `runs` (kept for the connectivity step).
      row_start[static_cast<std::size_t>(y)] = static_cast<std::int32_t>(n_runs_total);
      const std::int32_t e0 = rows_first[static_cast<std::size_t>(y)], e1 = rows_first[static_cast<std::size_t>(y) + 1];
      const std::ptrdiff_t n_runs =
          sweep_row(sweep, y, w, L + y * w, A + y * w, B + y * w, mask != nullptr ? inside.data() + y * w : nullptr,
                    row_centres.data() + e0, e1 - e0, labels + y * w, changed, runs.get() + n_runs_total);
      n_runs_total += static_cast<std::size_t>(n_runs);
    }
    row_start[static_cast<std::size_t>(h)] = static_cast<std::int32_t>(n_runs_total);
    if (!changed) break;  // a fixed point: further iterations change nothing
    // New centres: the means.
    for (std::ptrdiff_t k = 0; k < n_seeds; ++k) {
      const Sums& a = acc[static_cast<std::size_t>(k)];
      if (a.n <= 0) continue;
      const double inv = 1.0 / static_cast<double>(a.n);
      Centre& c = centres[static_cast<std::size_t>(k)];
      c.l = static_cast<float>(fold8(a.l) * inv);
      c.a = static_cast<float>(fold8(a.a) * inv);
      c.b = static_cast<float>(fold8(a.b) * inv);
      c.y = static_cast<float>(static_cast<double>(a.y) * inv);
      c.x = static_cast<float>(static_cast<double>(a.x) * inv);
    }
  }

  // 4. Connectivity, or (when disabled) consecutive labels; in-mask pixels that no centre reached
  //    share one extra label.
  const double segment_size = static_cast<double>(area) / static_cast<double>(n_seeds);
  const std::ptrdiff_t min_size = static_cast<std::ptrdiff_t>(prm.min_size_factor * segment_size);
  if (prm.enforce_connectivity && mask == nullptr)  // every pixel takes part: the runs of the last sweep
    return connect_runs(runs.get(), row_start, labels, h, w, min_size);
  if (prm.enforce_connectivity) return enforce_connectivity(labels, h, w, inside.data(), min_size);
  std::vector<std::int32_t> remap(static_cast<std::size_t>(n_seeds) + 1, -1);
  std::int32_t next = 0;
  for (std::ptrdiff_t p = 0; p < n; ++p) {
    if (!in_mask(p)) continue;
    const std::size_t key = labels[p] < 0 ? static_cast<std::size_t>(n_seeds) : static_cast<std::size_t>(labels[p]);
    if (remap[key] < 0) remap[key] = next++;
    labels[p] = remap[key];
  }
  return next;
}

}  // namespace her2fast
