#include "nuclei.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "nucleus_seeds.hpp"
#include "simd_dispatch.hpp"
#include "watershed.hpp"

namespace her2fast {

namespace {

// Per-thread scratch, reused across calls (a tile stream calls this once per window on each worker).
struct Scratch {
  std::vector<float> f0, f1;
  std::vector<double> line, row;
  std::vector<std::uint8_t> u0, u1, u2, u3;
  std::vector<std::int32_t> i0, i1, i2;
  std::vector<std::int32_t> run_id;
  std::vector<std::int64_t> area;
  std::vector<float> box_elev;
  std::vector<std::int32_t> box_seeds, box_out;
  std::vector<std::uint8_t> box_mask;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

template <typename T>
T* sized(std::vector<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// One horizontal run of structure offsets [a, b] over a row: AND (erode; reads outside the row are 0) or
// OR (dilate) of the row shifted by each offset.
HER2FAST_HOT void row_run(const std::uint8_t* row, std::ptrdiff_t w, std::ptrdiff_t a, std::ptrdiff_t b, bool erode,
                          std::uint8_t* out) {
  for (std::ptrdiff_t x = 0; x < w; ++x) out[x] = static_cast<std::uint8_t>(erode);
  for (std::ptrdiff_t k = a; k <= b; ++k) {
    // x + k lies in the row for x in [lo, hi)
    const std::ptrdiff_t lo = std::clamp<std::ptrdiff_t>(-k, 0, w), hi = std::clamp<std::ptrdiff_t>(w - k, lo, w);
    if (erode) {
      for (std::ptrdiff_t x = 0; x < lo; ++x) out[x] = 0;
      for (std::ptrdiff_t x = hi; x < w; ++x) out[x] = 0;
      for (std::ptrdiff_t x = lo; x < hi; ++x) out[x] &= row[x + k];
    } else {
      for (std::ptrdiff_t x = lo; x < hi; ++x) out[x] |= row[x + k];
    }
  }
}

}  // namespace

namespace {
// Runs of equal mask value (`fg`: runs of nonzero, else runs of zero) per row, joined into components
// with union-find: two runs of consecutive rows are connected when their columns overlap (4-connected)
// or overlap after widening one by a pixel (8-connected). parent[] is over run indices, in raster order.
struct Runs {
  std::vector<std::int32_t> row_start;  // first run of each row, h + 1 entries
  std::vector<std::int32_t> x0, x1;     // [x0, x1) of each run
  std::vector<std::int32_t> parent;
  std::int32_t find(std::int32_t i) {
    while (parent[static_cast<std::size_t>(i)] != i) {
      const std::int32_t g = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(i)])];
      parent[static_cast<std::size_t>(i)] = g;
      i = g;
    }
    return i;
  }
  void join(std::int32_t a, std::int32_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    if (a < b)  // the root is the earliest run: the component's first pixel in raster order
      parent[static_cast<std::size_t>(b)] = a;
    else
      parent[static_cast<std::size_t>(a)] = b;
  }
};

void find_runs(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, bool fg, bool eight, Runs& r) {
  r.row_start.assign(static_cast<std::size_t>(h) + 1, 0);
  r.x0.clear();
  r.x1.clear();
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    r.row_start[static_cast<std::size_t>(y)] = static_cast<std::int32_t>(r.x0.size());
    const std::uint8_t* row = mask + y * w;
    std::ptrdiff_t x = 0;
    while (x < w) {
      while (x < w && (row[x] != 0) != fg) ++x;
      if (x == w) break;
      const std::ptrdiff_t start = x;
      while (x < w && (row[x] != 0) == fg) ++x;
      r.x0.push_back(static_cast<std::int32_t>(start));
      r.x1.push_back(static_cast<std::int32_t>(x));
    }
  }
  r.row_start[static_cast<std::size_t>(h)] = static_cast<std::int32_t>(r.x0.size());
  if (r.x0.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw std::invalid_argument("label runs: too many runs");
  r.parent.resize(r.x0.size());
  for (std::size_t i = 0; i < r.parent.size(); ++i) r.parent[i] = static_cast<std::int32_t>(i);
  const std::int32_t widen = eight ? 1 : 0;
  for (std::ptrdiff_t y = 1; y < h; ++y) {
    std::int32_t i = r.row_start[static_cast<std::size_t>(y) - 1];
    const std::int32_t i_end = r.row_start[static_cast<std::size_t>(y)];
    for (std::int32_t j = i_end; j < r.row_start[static_cast<std::size_t>(y) + 1]; ++j) {
      const std::int32_t a = r.x0[static_cast<std::size_t>(j)] - widen, b = r.x1[static_cast<std::size_t>(j)] + widen;
      // runs of the row above ending before this one starts can be skipped for the later runs too
      while (i < i_end && r.x1[static_cast<std::size_t>(i)] <= a) ++i;
      for (std::int32_t k = i; k < i_end && r.x0[static_cast<std::size_t>(k)] < b; ++k) r.join(j, k);
    }
  }
}
}  // namespace

namespace {
// label8, and with `area` non-null the pixels of each label (area[0] = 0), from the run lengths.
std::int32_t label8_areas(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, std::int32_t* out,
                          std::vector<std::int64_t>* area) {
  if (h < 1 || w < 1) throw std::invalid_argument("label8: empty image");
  thread_local Runs r;
  find_runs(mask, h, w, true, true, r);
  std::fill(out, out + h * w, 0);
  // roots are the earliest run of their component: numbering roots in run order is raster order
  std::vector<std::int32_t>& id = scratch().run_id;
  id.assign(r.parent.size(), 0);
  if (area != nullptr) area->assign(1, 0);
  std::int32_t n = 0;
  for (std::ptrdiff_t y = 0; y < h; ++y)
    for (std::int32_t j = r.row_start[static_cast<std::size_t>(y)]; j < r.row_start[static_cast<std::size_t>(y) + 1];
         ++j) {
      const std::int32_t root = r.find(j);
      if (root == j) {
        id[static_cast<std::size_t>(j)] = ++n;
        if (area != nullptr) area->push_back(0);
      }
      const std::int32_t label = id[static_cast<std::size_t>(root)];
      const std::int32_t a = r.x0[static_cast<std::size_t>(j)], b = r.x1[static_cast<std::size_t>(j)];
      std::fill(out + y * w + a, out + y * w + b, label);
      if (area != nullptr) (*area)[static_cast<std::size_t>(label)] += b - a;
    }
  return n;
}
}  // namespace

std::int32_t label8(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, std::int32_t* out) {
  return label8_areas(mask, h, w, out, nullptr);
}

void fill_holes(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, std::uint8_t* out) {
  if (h < 1 || w < 1) throw std::invalid_argument("fill_holes: empty image");
  thread_local Runs r;
  find_runs(mask, h, w, false, false, r);  // 4-connected background runs
  std::vector<std::int32_t>& outside = scratch().run_id;
  outside.assign(r.parent.size(), 0);
  for (std::ptrdiff_t y = 0; y < h; ++y)
    for (std::int32_t j = r.row_start[static_cast<std::size_t>(y)]; j < r.row_start[static_cast<std::size_t>(y) + 1];
         ++j)
      if (y == 0 || y == h - 1 || r.x0[static_cast<std::size_t>(j)] == 0 || r.x1[static_cast<std::size_t>(j)] == w)
        outside[static_cast<std::size_t>(r.find(j))] = 1;
  // a background run is kept (not a hole) when its component reaches the border; the rest is filled
  for (std::ptrdiff_t i = 0; i < h * w; ++i) out[i] = static_cast<std::uint8_t>(mask[i] != 0);
  for (std::ptrdiff_t y = 0; y < h; ++y)
    for (std::int32_t j = r.row_start[static_cast<std::size_t>(y)]; j < r.row_start[static_cast<std::size_t>(y) + 1];
         ++j)
      if (!outside[static_cast<std::size_t>(r.find(j))])
        std::fill(out + y * w + r.x0[static_cast<std::size_t>(j)], out + y * w + r.x1[static_cast<std::size_t>(j)],
                  std::uint8_t{1});
}

void shift_reduce(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, const std::uint8_t* structure,
                  std::ptrdiff_t sh, std::ptrdiff_t sw, bool erode, std::uint8_t* out) {
  if (sh < 1 || sw < 1 || sh % 2 == 0 || sw % 2 == 0)
    throw std::invalid_argument("shift_reduce: the structure must have odd sides, got " + std::to_string(sh) + "x" +
                                std::to_string(sw));
  const std::ptrdiff_t ry = sh / 2, rx = sw / 2;
  // each structure row: one run [a, b] of column offsets, or none
  std::vector<std::ptrdiff_t> ra(static_cast<std::size_t>(sh), 1), rb(static_cast<std::size_t>(sh), 0);
  bool any = false;
  for (std::ptrdiff_t i = 0; i < sh; ++i) {
    std::ptrdiff_t first = -1, last = -1, count = 0;
    for (std::ptrdiff_t j = 0; j < sw; ++j)
      if (structure[i * sw + j]) {
        if (first < 0) first = j;
        last = j;
        ++count;
      }
    if (count == 0) continue;
    if (last - first + 1 != count)
      throw std::invalid_argument("shift_reduce: structure row " + std::to_string(i) + " is not one run of ones");
    ra[static_cast<std::size_t>(i)] = first - rx;
    rb[static_cast<std::size_t>(i)] = last - rx;
    any = true;
  }
  if (!any) {
    std::fill(out, out + h * w, static_cast<std::uint8_t>(erode));
    return;
  }
  auto& s = scratch();
  // distinct runs, each computed once over all rows
  std::vector<std::pair<std::ptrdiff_t, std::ptrdiff_t>> runs;
  std::vector<std::size_t> run_of(static_cast<std::size_t>(sh), 0);
  for (std::ptrdiff_t i = 0; i < sh; ++i) {
    const auto key = std::make_pair(ra[static_cast<std::size_t>(i)], rb[static_cast<std::size_t>(i)]);
    if (key.first > key.second) continue;
    auto it = std::find(runs.begin(), runs.end(), key);
    run_of[static_cast<std::size_t>(i)] = static_cast<std::size_t>(it - runs.begin());
    if (it == runs.end()) runs.push_back(key);
  }
  std::uint8_t* horiz = sized(s.u2, runs.size() * static_cast<std::size_t>(h * w));
  for (std::size_t k = 0; k < runs.size(); ++k)
    for (std::ptrdiff_t y = 0; y < h; ++y)
      row_run(mask + y * w, w, runs[k].first, runs[k].second, erode,
              horiz + k * static_cast<std::size_t>(h * w) + y * w);
  std::fill(out, out + h * w, static_cast<std::uint8_t>(erode));
  for (std::ptrdiff_t i = 0; i < sh; ++i) {
    if (ra[static_cast<std::size_t>(i)] > rb[static_cast<std::size_t>(i)]) continue;
    const std::ptrdiff_t dy = i - ry;
    const std::uint8_t* hk = horiz + run_of[static_cast<std::size_t>(i)] * static_cast<std::size_t>(h * w);
    for (std::ptrdiff_t y = 0; y < h; ++y) {
      std::uint8_t* o = out + y * w;
      const std::ptrdiff_t ys = y + dy;
      if (ys < 0 || ys >= h) {  // the row read is outside the image: all 0
        if (erode) std::fill(o, o + w, std::uint8_t{0});
        continue;
      }
      const std::uint8_t* src = hk + ys * w;
      if (erode)
        for (std::ptrdiff_t x = 0; x < w; ++x) o[x] &= src[x];
      else
        for (std::ptrdiff_t x = 0; x < w; ++x) o[x] |= src[x];
    }
  }
}

namespace {
// The Gaussian's row kernels, dispatched at run time (AVX2 / AVX-512: the same double operations in the
// same order, wider; the build has no FMA contraction, so the results are the same bit for bit).
// Axis 0 for row y: acc = c * fw[0], then += (lo_k + hi_k) * fw[-k] for k = r .. 1; t = float(acc).
HER2FAST_HOT void gauss_axis0_row(const float* in, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t y,
                                  const double* fw, int r, double* acc, float* t) {
  const float* c = in + y * w;
  for (std::ptrdiff_t x = 0; x < w; ++x) acc[x] = static_cast<double>(c[x]) * fw[0];
  // SciPy: oline = iline[0] * fw[0]; for jj = -size1 .. -1: oline += (iline[jj] + iline[-jj]) * fw[jj]
  for (int jj = -r; jj < 0; ++jj) {
    const float* lo = in + std::clamp<std::ptrdiff_t>(y + jj, 0, h - 1) * w;
    const float* hi = in + std::clamp<std::ptrdiff_t>(y - jj, 0, h - 1) * w;
    const double wj = fw[jj];
    for (std::ptrdiff_t x = 0; x < w; ++x) acc[x] += (static_cast<double>(lo[x]) + static_cast<double>(hi[x])) * wj;
  }
  for (std::ptrdiff_t x = 0; x < w; ++x) t[x] = static_cast<float>(acc[x]);
}

// Axis 1 of one row: `line` holds r edge values, the row (w, as double) and r edge values.
HER2FAST_HOT void gauss_axis1_row(const double* line, std::ptrdiff_t w, const double* fw, int r, double* row,
                                  float* o) {
  const double* il = line + r;
  // per pixel the same sum in the same order as SciPy's loop; tap-outer so that it runs across x
  for (std::ptrdiff_t x = 0; x < w; ++x) row[x] = il[x] * fw[0];
  for (int jj = -r; jj < 0; ++jj) {
    const double wj = fw[jj];
    for (std::ptrdiff_t x = 0; x < w; ++x) row[x] += (il[x + jj] + il[x - jj]) * wj;
  }
  for (std::ptrdiff_t x = 0; x < w; ++x) o[x] = static_cast<float>(row[x]);
}
}  // namespace

void gaussian_smooth(const float* in, std::ptrdiff_t h, std::ptrdiff_t w, const double* weights, int r, float* out) {
  if (r < 0) throw std::invalid_argument("gaussian_smooth: radius must be >= 0");
  auto& s = scratch();
  const std::size_t n = static_cast<std::size_t>(h * w);
  float* tmp = sized(s.f1, n);
  const double* fw = weights + r;  // fw[-k] for k = r .. 1, as SciPy's symmetric loop reads them
  // axis 0: rows y - k and y + k (clamped: mode "nearest"), outermost pair first, double sums
  double* acc = sized(s.line, static_cast<std::size_t>(w + 2 * r));
  for (std::ptrdiff_t y = 0; y < h; ++y) gauss_axis0_row(in, h, w, y, fw, r, acc, tmp + y * w);
  // axis 1: each row extended by r edge values
  double* line = acc;
  double* row = sized(s.row, static_cast<std::size_t>(w));
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const float* t = tmp + y * w;
    for (int k = 0; k < r; ++k) {
      line[k] = static_cast<double>(t[0]);
      line[r + w + k] = static_cast<double>(t[w - 1]);
    }
    for (std::ptrdiff_t x = 0; x < w; ++x) line[r + x] = static_cast<double>(t[x]);
    gauss_axis1_row(line, w, fw, r, row, out + y * w);
  }
}

std::int32_t segment_nuclei(const float* hem, std::ptrdiff_t h, std::ptrdiff_t w, const std::uint8_t* mask,
                            const NucleiParams& p, std::int32_t* labels) {
  if (hem == nullptr || labels == nullptr) throw std::invalid_argument("segment_nuclei: null pointer");
  if (h < 1 || w < 1) throw std::invalid_argument("segment_nuclei: empty image");
  if (!(p.depth > 0.0 && p.depth < 1.0))
    throw std::invalid_argument("segment_nuclei: depth must be in (0, 1), got " + std::to_string(p.depth));
  if (p.smooth_weights != nullptr && p.smooth_radius < 0)
    throw std::invalid_argument("segment_nuclei: smooth_radius must be >= 0");
  auto& s = scratch();
  const std::ptrdiff_t n = h * w;
  const auto un = static_cast<std::size_t>(n);
  // 1-2. smoothing and threshold (and the mask)
  const float* sm = hem;
  if (p.smooth_weights != nullptr) {
    float* f = sized(s.f0, un);
    gaussian_smooth(hem, h, w, p.smooth_weights, p.smooth_radius, f);
    sm = f;
  }
  std::uint8_t* fg = sized(s.u0, un);
  for (std::ptrdiff_t i = 0; i < n; ++i) fg[i] = static_cast<std::uint8_t>(sm[i] >= p.threshold);
  if (mask != nullptr)
    for (std::ptrdiff_t i = 0; i < n; ++i) fg[i] = static_cast<std::uint8_t>(fg[i] && mask[i]);
  // 3. opening, holes filled
  std::uint8_t* tmp = sized(s.u1, un);
  if (p.opening != nullptr) {
    shift_reduce(fg, h, w, p.opening, p.opening_side, p.opening_side, true, tmp);
    std::vector<std::uint8_t> refl(static_cast<std::size_t>(p.opening_side * p.opening_side));
    for (std::size_t i = 0; i < refl.size(); ++i) refl[i] = p.opening[refl.size() - 1 - i];
    shift_reduce(tmp, h, w, refl.data(), p.opening_side, p.opening_side, false, fg);
  }
  fill_holes(fg, h, w, fg);
  // components, area filter
  std::int32_t* comp = sized(s.i0, un);
  std::vector<std::int64_t>& area = s.area;
  const std::int32_t nc = label8_areas(fg, h, w, comp, &area);
  if (nc == 0) {
    std::fill(labels, labels + n, 0);
    return 0;
  }
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(nc) + 1, 0);
  std::ptrdiff_t kept_px = 0;
  for (std::int32_t l = 1; l <= nc; ++l) {
    keep[static_cast<std::size_t>(l)] = static_cast<double>(area[static_cast<std::size_t>(l)]) >= p.min_px;
    if (keep[static_cast<std::size_t>(l)]) kept_px += area[static_cast<std::size_t>(l)];
  }
  if (kept_px == n) return -1;
  // 4. seeds: per-component distance h-maxima, dilated within the foreground, labelled
  float* dist = sized(s.f1, un);
  std::uint8_t* peaks = tmp;
  component_distance_maxima(comp, h, w, keep.data(), nc, p.depth, dist, peaks);
  if (p.seed_disk != nullptr) {
    std::vector<std::uint8_t> refl(static_cast<std::size_t>(p.seed_side * p.seed_side));
    for (std::size_t i = 0; i < refl.size(); ++i) refl[i] = p.seed_disk[refl.size() - 1 - i];
    std::uint8_t* src = sized(s.u3, un);
    std::copy(peaks, peaks + n, src);
    shift_reduce(src, h, w, refl.data(), p.seed_side, p.seed_side, false, peaks);
  }
  for (std::ptrdiff_t i = 0; i < n; ++i)  // within the kept components
    peaks[i] = static_cast<std::uint8_t>(peaks[i] && keep[static_cast<std::size_t>(comp[i])]);
  std::int32_t* markers = sized(s.i1, un);
  const std::int32_t nm = label8(peaks, h, w, markers);
  // a component holding one marker is that nucleus whole; only components with several are flooded
  std::vector<std::int32_t> comp_of(static_cast<std::size_t>(nm) + 1, 0);
  for (std::ptrdiff_t i = 0; i < n; ++i)
    if (markers[i] > 0) comp_of[static_cast<std::size_t>(markers[i])] = comp[i];
  std::vector<std::int32_t> per_comp(static_cast<std::size_t>(nc) + 1, 0), owner(static_cast<std::size_t>(nc) + 1, 0);
  for (std::int32_t m = 1; m <= nm; ++m) ++per_comp[static_cast<std::size_t>(comp_of[static_cast<std::size_t>(m)])];
  per_comp[0] = 0;
  bool several = false;
  for (std::int32_t m = 1; m <= nm; ++m) {
    const auto c = static_cast<std::size_t>(comp_of[static_cast<std::size_t>(m)]);
    if (c > 0 && per_comp[c] == 1) owner[c] = m;
    several = several || (c > 0 && per_comp[c] >= 2);
  }
  // A kept component without a marker (flat, tiny) keeps its own label, nm + 1, ...: SciPy labels these
  // components (the foreground pixels left unlabelled: a flood reaches every pixel of its component) in
  // raster order of their first pixel, which is the order of their component ids.
  std::int32_t n_extra = 0;
  for (std::int32_t c = 1; c <= nc; ++c)
    if (keep[static_cast<std::size_t>(c)] && per_comp[static_cast<std::size_t>(c)] == 0)
      owner[static_cast<std::size_t>(c)] = nm + ++n_extra;
  for (std::ptrdiff_t i = 0; i < n; ++i) labels[i] = owner[static_cast<std::size_t>(comp[i])];
  if (several) {
    // Each component holding several markers is flooded alone, in its bounding box: a flood cannot leave
    // its component (the mask), and the queue keeps the relative order of one component's entries
    // whatever the other components push in between, so the labels equal one flood of all of them; the
    // box's pixels off the component are never pushed, and their elevation is set inside the component's
    // range (-1: every foreground pixel is >= 1 from the background) to keep the queue's key range small.
    const auto nl = static_cast<std::size_t>(nc) + 1;
    std::vector<std::int32_t> bx0(nl, static_cast<std::int32_t>(w)), by0(nl, static_cast<std::int32_t>(h)), bx1(nl, -1),
        by1(nl, -1);
    for (std::ptrdiff_t y = 0; y < h; ++y)
      for (std::ptrdiff_t x = 0; x < w; ++x) {
        const auto c = static_cast<std::size_t>(comp[y * w + x]);
        if (c == 0 || per_comp[c] < 2) continue;
        bx0[c] = std::min(bx0[c], static_cast<std::int32_t>(x));
        bx1[c] = std::max(bx1[c], static_cast<std::int32_t>(x));
        by0[c] = std::min(by0[c], static_cast<std::int32_t>(y));
        by1[c] = std::max(by1[c], static_cast<std::int32_t>(y));
      }
    std::vector<float>& elev = s.box_elev;
    std::vector<std::int32_t>& seeds = s.box_seeds;
    std::vector<std::int32_t>& flooded = s.box_out;
    std::vector<std::uint8_t>& inside = s.box_mask;
    for (std::int32_t c = 1; c <= nc; ++c) {
      const auto cu = static_cast<std::size_t>(c);
      if (per_comp[cu] < 2) continue;
      const std::ptrdiff_t x0 = bx0[cu], y0 = by0[cu], cw = bx1[cu] - x0 + 1, ch = by1[cu] - y0 + 1;
      const auto cn = static_cast<std::size_t>(cw * ch);
      elev.resize(cn);
      seeds.resize(cn);
      flooded.resize(cn);
      inside.resize(cn);
      for (std::ptrdiff_t y = 0; y < ch; ++y)
        for (std::ptrdiff_t x = 0; x < cw; ++x) {
          const std::ptrdiff_t i = (y0 + y) * w + x0 + x;
          const auto k = static_cast<std::size_t>(y * cw + x);
          const bool in = comp[i] == c;
          inside[k] = static_cast<std::uint8_t>(in);
          seeds[k] = in ? markers[i] : 0;
          elev[k] = in ? -dist[i] : -1.0f;
        }
      seeded_watershed(elev.data(), ch, cw, seeds.data(), nm, inside.data(), std::numeric_limits<float>::infinity(),
                       -1.0, nullptr, nullptr, false, flooded.data(), 8);
      for (std::ptrdiff_t y = 0; y < ch; ++y)
        for (std::ptrdiff_t x = 0; x < cw; ++x) {
          const auto k = static_cast<std::size_t>(y * cw + x);
          if (inside[k]) labels[(y0 + y) * w + x0 + x] = flooded[k];
        }
    }
  }
  // keep a window's worth of scratch per thread, not the largest image ever segmented
  if (un > (std::size_t{8} << 20)) s = Scratch();
  // every marker keeps its label (its pixels are its own seed), every orphan component gets one
  return nm + n_extra;
}

}  // namespace her2fast
