#include "slic.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

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

// XYZ (already divided by the D65 white point) -> CIELAB, in place; scikit-image's xyz2lab.
HER2FAST_HOT void xyz_to_lab(float* __restrict x, float* __restrict y, float* __restrict z, std::size_t n) {
  const float thr = 0.008856f;
  for (std::size_t i = 0; i < n; ++i) {
    const float tx = x[i], ty = y[i], tz = z[i];
    const float fx = tx > thr ? cbrt_positive(std::max(tx, thr)) : 7.787f * tx + 16.0f / 116.0f;
    const float fy = ty > thr ? cbrt_positive(std::max(ty, thr)) : 7.787f * ty + 16.0f / 116.0f;
    const float fz = tz > thr ? cbrt_positive(std::max(tz, thr)) : 7.787f * tz + 16.0f / 116.0f;
    x[i] = 116.0f * fy - 16.0f;     // L
    y[i] = 500.0f * (fx - fy);      // a
    z[i] = 200.0f * (fy - fz);      // b
  }
}

// One row of the assignment step for centre k: keep the nearer centre per pixel.
HER2FAST_HOT void assign_row(const float* __restrict L, const float* __restrict A, const float* __restrict B,
                             const float* __restrict xs, float* __restrict dist, std::int32_t* __restrict lab,
                             std::ptrdiff_t n, float cl, float ca, float cb, float cx, float wxy, float dy2,
                             std::int32_t k) {
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float dl = L[i] - cl, da = A[i] - ca, db = B[i] - cb, dx = xs[i] - cx;
    const float d = dl * dl + da * da + db * db + wxy * (dx * dx) + dy2;
    const float old = dist[i];
    const std::int32_t take = -static_cast<std::int32_t>(d < old);  // all ones when d is nearer
    dist[i] = d < old ? d : old;
    lab[i] = (lab[i] & ~take) | (k & take);
  }
}

struct Centre {
  float l, a, b, y, x;
};

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

}  // namespace

namespace {

// Union-find over runs; the root of a set is its smallest run index, i.e. the run that comes first
// in raster order, so components are numbered in the order a raster scan meets them.
std::int32_t find_root(std::vector<std::int32_t>& parent, std::int32_t i) {
  while (parent[static_cast<std::size_t>(i)] != i) {
    parent[static_cast<std::size_t>(i)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(i)])];
    i = parent[static_cast<std::size_t>(i)];
  }
  return i;
}

void unite(std::vector<std::int32_t>& parent, std::int32_t a, std::int32_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a == b) return;
  if (a < b) parent[static_cast<std::size_t>(b)] = a;
  else parent[static_cast<std::size_t>(a)] = b;
}

struct Run {
  std::int32_t y, x0, x1;  // pixels [x0, x1) of row y
  std::int32_t label;
};

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
  const std::int32_t n_runs = static_cast<std::int32_t>(runs.size());

  // 2. Connected components: unite 4-adjacent runs (overlapping columns in consecutive rows) of the
  //    same label. Remember every touching pair of runs for the merge step.
  std::vector<std::int32_t> parent(static_cast<std::size_t>(n_runs));
  for (std::int32_t i = 0; i < n_runs; ++i) parent[static_cast<std::size_t>(i)] = i;
  std::vector<std::pair<std::int32_t, std::int32_t>> touching;  // (earlier run, later run), different labels
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const std::int32_t a_end = row_start[static_cast<std::size_t>(y) + 1];
    for (std::int32_t a = row_start[static_cast<std::size_t>(y)]; a + 1 < a_end; ++a)
      if (runs[static_cast<std::size_t>(a)].x1 == runs[static_cast<std::size_t>(a) + 1].x0)
        touching.emplace_back(a, a + 1);  // horizontal neighbours always differ in label
    if (y == 0) continue;
    std::int32_t b = row_start[static_cast<std::size_t>(y) - 1];
    const std::int32_t b_end = row_start[static_cast<std::size_t>(y)];
    for (std::int32_t a = row_start[static_cast<std::size_t>(y)]; a < a_end; ++a) {
      const Run& ra = runs[static_cast<std::size_t>(a)];
      while (b < b_end && runs[static_cast<std::size_t>(b)].x1 <= ra.x0) ++b;
      for (std::int32_t c = b; c < b_end && runs[static_cast<std::size_t>(c)].x0 < ra.x1; ++c) {
        if (runs[static_cast<std::size_t>(c)].label == ra.label) unite(parent, c, a);
        else touching.emplace_back(c, a);
      }
    }
  }
  // 3. Component sizes; components in raster order of their first pixel (root = first run).
  std::vector<std::int64_t> size(static_cast<std::size_t>(n_runs), 0);
  for (std::int32_t i = 0; i < n_runs; ++i) {
    const std::int32_t r = find_root(parent, i);
    parent[static_cast<std::size_t>(i)] = r;
    size[static_cast<std::size_t>(r)] += runs[static_cast<std::size_t>(i)].x1 - runs[static_cast<std::size_t>(i)].x0;
  }
  // 4. In raster order, a component smaller than min_size joins the first-met neighbouring component
  //    that comes before it (as Achanta's EnforceLabelConnectivity); the others get new labels.
  std::vector<std::int32_t> earlier_neighbour(static_cast<std::size_t>(n_runs), -1);
  for (const auto& [first, second] : touching) {
    const std::int32_t ra = parent[static_cast<std::size_t>(first)], rb = parent[static_cast<std::size_t>(second)];
    if (ra == rb) continue;
    const std::int32_t lo = std::min(ra, rb), hi = std::max(ra, rb);
    std::int32_t& e = earlier_neighbour[static_cast<std::size_t>(hi)];
    if (e < 0 || lo < e) e = lo;
  }
  std::vector<std::int32_t> final_label(static_cast<std::size_t>(n_runs), -1);
  std::int32_t next_label = 0;
  for (std::int32_t r = 0; r < n_runs; ++r) {
    if (parent[static_cast<std::size_t>(r)] != r) continue;
    const std::int32_t e = earlier_neighbour[static_cast<std::size_t>(r)];
    if (size[static_cast<std::size_t>(r)] < min_size && e >= 0) final_label[static_cast<std::size_t>(r)] = final_label[static_cast<std::size_t>(e)];
    else final_label[static_cast<std::size_t>(r)] = next_label++;
  }
  for (std::int32_t i = 0; i < n_runs; ++i) {
    const Run& run = runs[static_cast<std::size_t>(i)];
    std::fill(labels + run.y * w + run.x0, labels + run.y * w + run.x1,
              final_label[static_cast<std::size_t>(parent[static_cast<std::size_t>(i)])]);
  }
  return next_label;
}

int slic(const std::uint8_t* rgb, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t row_stride,
         const std::uint8_t* mask, std::ptrdiff_t mask_stride, const SlicParams& prm, std::int32_t* labels) {
  if (rgb == nullptr || labels == nullptr) throw std::invalid_argument("slic: null image or labels pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("slic: image must not be empty, got " + std::to_string(h) + "x" + std::to_string(w));
  if (row_stride < 3 * w) throw std::invalid_argument("slic: row_stride " + std::to_string(row_stride) + " < 3*width");
  if (mask != nullptr && mask_stride < w)
    throw std::invalid_argument("slic: mask_stride " + std::to_string(mask_stride) + " < width");
  if (prm.n_segments < 1) throw std::invalid_argument("slic: n_segments must be >= 1, got " + std::to_string(prm.n_segments));
  if (!(std::isfinite(prm.compactness) && prm.compactness > 0))
    throw std::invalid_argument("slic: compactness must be finite and > 0, got " + std::to_string(prm.compactness));
  if (prm.max_iter < 1) throw std::invalid_argument("slic: max_iter must be >= 1, got " + std::to_string(prm.max_iter));
  if (!(prm.min_size_factor >= 0 && prm.min_size_factor <= 1))
    throw std::invalid_argument("slic: min_size_factor must be in [0, 1], got " + std::to_string(prm.min_size_factor));

  const std::ptrdiff_t n = h * w;
  const std::size_t nz = static_cast<std::size_t>(n);
  std::vector<std::uint8_t> inside(nz, 1);
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
      if (!inside[static_cast<std::size_t>(y * w + x)]) continue;
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
  std::vector<float> L(nz), A(nz), B(nz);
  {
    const float wx = 1.0f / 0.95047f, wz = 1.0f / 1.08883f;
    for (std::ptrdiff_t y = 0; y < h; ++y) {
      const std::uint8_t* row = rgb + y * row_stride;
      float* X = L.data() + y * w;
      float* Y = A.data() + y * w;
      float* Z = B.data() + y * w;
      for (std::ptrdiff_t x = 0; x < w; ++x) {
        const float r = linear[row[3 * x]], g = linear[row[3 * x + 1]], b = linear[row[3 * x + 2]];
        X[x] = (0.412453f * r + 0.357580f * g + 0.180423f * b) * wx;
        Y[x] = 0.212671f * r + 0.715160f * g + 0.072169f * b;
        Z[x] = (0.019334f * r + 0.119193f * g + 0.950227f * b) * wz;
      }
    }
    xyz_to_lab(L.data(), A.data(), B.data(), nz);
  }

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
      if (!inside[static_cast<std::size_t>(y * w + x)]) continue;
      std::ptrdiff_t by = y, bx = x;
      double best = gradient(y, x);
      for (std::ptrdiff_t dy = -1; dy <= 1; ++dy)
        for (std::ptrdiff_t dx = -1; dx <= 1; ++dx) {
          const std::ptrdiff_t yy = y + dy, xx = x + dx;
          if (yy < 0 || xx < 0 || yy >= h || xx >= w || !inside[static_cast<std::size_t>(yy * w + xx)]) continue;
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
      if (inside[static_cast<std::size_t>(p)]) {
        const std::size_t q = static_cast<std::size_t>(p);
        centres.push_back({L[q], A[q], B[q], static_cast<float>(p / w), static_cast<float>(p % w)});
        break;
      }
  }
  const std::ptrdiff_t n_seeds = static_cast<std::ptrdiff_t>(centres.size());

  // 3. Local k-means.
  const std::ptrdiff_t win = step < 10 ? (3 * step + 1) / 2 : step;  // Achanta: 1.5 S for small S
  const float wxy = static_cast<float>((prm.compactness / step) * (prm.compactness / step));
  std::vector<float> xs(static_cast<std::size_t>(w));
  for (std::ptrdiff_t x = 0; x < w; ++x) xs[static_cast<std::size_t>(x)] = static_cast<float>(x);
  std::vector<float> dist(nz);
  std::vector<std::int32_t> previous(nz);
  std::vector<double> acc(static_cast<std::size_t>(n_seeds) * 6);
  const float inf = std::numeric_limits<float>::infinity();
  for (int it = 0; it < prm.max_iter; ++it) {
    for (std::size_t p = 0; p < nz; ++p) dist[p] = inside[p] ? inf : -1.0f;  // -1: never assigned
    std::copy(labels, labels + n, previous.begin());
    for (std::ptrdiff_t k = 0; k < n_seeds; ++k) {
      const Centre& c = centres[static_cast<std::size_t>(k)];
      const std::ptrdiff_t cy = static_cast<std::ptrdiff_t>(std::lround(c.y));
      const std::ptrdiff_t cx = static_cast<std::ptrdiff_t>(std::lround(c.x));
      const std::ptrdiff_t y0 = std::max<std::ptrdiff_t>(0, cy - win), y1 = std::min<std::ptrdiff_t>(h - 1, cy + win);
      std::ptrdiff_t x0 = std::max<std::ptrdiff_t>(0, cx - win), x1 = std::min<std::ptrdiff_t>(w - 1, cx + win);
      // Widen the window to a multiple of 16 columns (inside the image): whole SIMD vectors, and the
      // same result whichever instruction set runs it.
      const std::ptrdiff_t extra = (16 - (x1 - x0 + 1) % 16) % 16;
      x1 = std::min<std::ptrdiff_t>(w - 1, x1 + extra - extra / 2);
      x0 = std::max<std::ptrdiff_t>(0, x1 - (x1 - x0 + 1 + extra) + 1);
      for (std::ptrdiff_t y = y0; y <= y1; ++y) {
        const float dy = static_cast<float>(y) - c.y;
        const std::ptrdiff_t o = y * w + x0;
        assign_row(L.data() + o, A.data() + o, B.data() + o, xs.data() + x0, dist.data() + o, labels + o, x1 - x0 + 1,
                   c.l, c.a, c.b, c.x, wxy, wxy * dy * dy, static_cast<std::int32_t>(k));
      }
    }
    // Update the centres: means of their pixels, accumulated over runs of equal labels along rows.
    const bool changed = !std::equal(labels, labels + n, previous.begin());
    std::fill(acc.begin(), acc.end(), 0.0);
    for (std::ptrdiff_t y = 0; y < h; ++y) {
      const std::int32_t* lr = labels + y * w;
      const float* Lr = L.data() + y * w;
      const float* Ar = A.data() + y * w;
      const float* Br = B.data() + y * w;
      std::ptrdiff_t x = 0;
      while (x < w) {
        const std::int32_t k = lr[x];
        const std::ptrdiff_t x0 = x;
        while (x < w && lr[x] == k) ++x;
        // Two partial sums per channel: shorter dependency chains, same order on every CPU.
        float sl0 = 0.f, sa0 = 0.f, sb0 = 0.f, sl1 = 0.f, sa1 = 0.f, sb1 = 0.f;
        std::ptrdiff_t i = x0;
        for (; i + 1 < x; i += 2) {
          sl0 += Lr[i];
          sa0 += Ar[i];
          sb0 += Br[i];
          sl1 += Lr[i + 1];
          sa1 += Ar[i + 1];
          sb1 += Br[i + 1];
        }
        if (i < x) {
          sl0 += Lr[i];
          sa0 += Ar[i];
          sb0 += Br[i];
        }
        const float sl = sl0 + sl1, sa = sa0 + sa1, sb = sb0 + sb1;
        if (k < 0) continue;
        const double len = static_cast<double>(x - x0);
        double* a = acc.data() + static_cast<std::size_t>(k) * 6;
        a[0] += sl;
        a[1] += sa;
        a[2] += sb;
        a[3] += static_cast<double>(y) * len;
        a[4] += 0.5 * static_cast<double>(x0 + x - 1) * len;
        a[5] += len;
      }
    }
    if (!changed) break;  // a fixed point: further iterations change nothing
    for (std::ptrdiff_t k = 0; k < n_seeds; ++k) {
      const double* a = acc.data() + static_cast<std::size_t>(k) * 6;
      if (a[5] <= 0) continue;
      const double inv = 1.0 / a[5];
      centres[static_cast<std::size_t>(k)] = {static_cast<float>(a[0] * inv), static_cast<float>(a[1] * inv),
                                              static_cast<float>(a[2] * inv), static_cast<float>(a[3] * inv),
                                              static_cast<float>(a[4] * inv)};
    }
  }

  // 4. Connectivity, or (when disabled) consecutive labels; in-mask pixels that no centre reached
  //    share one extra label.
  const double segment_size = static_cast<double>(area) / static_cast<double>(n_seeds);
  if (prm.enforce_connectivity)
    return enforce_connectivity(labels, h, w, inside.data(), static_cast<std::ptrdiff_t>(prm.min_size_factor * segment_size));
  std::vector<std::int32_t> remap(static_cast<std::size_t>(n_seeds) + 1, -1);
  std::int32_t next = 0;
  for (std::ptrdiff_t p = 0; p < n; ++p) {
    if (!inside[static_cast<std::size_t>(p)]) continue;
    const std::size_t key = labels[p] < 0 ? static_cast<std::size_t>(n_seeds) : static_cast<std::size_t>(labels[p]);
    if (remap[key] < 0) remap[key] = next++;
    labels[p] = remap[key];
  }
  return next;
}

}  // namespace her2fast
