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
    const bool better = d < dist[i];
    dist[i] = better ? d : dist[i];
    lab[i] = better ? k : lab[i];
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

int enforce_connectivity(std::int32_t* labels, std::ptrdiff_t h, std::ptrdiff_t w, const std::uint8_t* inside,
                         std::ptrdiff_t min_size, std::ptrdiff_t max_size) {
  if (labels == nullptr || inside == nullptr) throw std::invalid_argument("enforce_connectivity: null pointer");
  if (h < 1 || w < 1) throw std::invalid_argument("enforce_connectivity: empty image");
  const std::ptrdiff_t n = h * w;
  if (max_size < 1 || max_size > n) max_size = n;
  std::vector<std::int32_t> out(static_cast<std::size_t>(n), -1);
  std::vector<std::int32_t> queue(static_cast<std::size_t>(n));
  std::int32_t next_label = 0;
  for (std::ptrdiff_t p = 0; p < n; ++p) {
    if (!inside[p] || out[static_cast<std::size_t>(p)] >= 0) continue;
    const std::int32_t orig = labels[p];
    out[static_cast<std::size_t>(p)] = next_label;
    queue[0] = static_cast<std::int32_t>(p);
    std::ptrdiff_t size = 1, head = 0;
    std::int32_t adjacent = -1;
    while (head < size) {
      const std::ptrdiff_t q = queue[static_cast<std::size_t>(head++)];
      const std::ptrdiff_t y = q / w, x = q - y * w;
      const std::ptrdiff_t nbr[4] = {x > 0 ? q - 1 : -1, x + 1 < w ? q + 1 : -1, y > 0 ? q - w : -1,
                                     y + 1 < h ? q + w : -1};
      for (std::ptrdiff_t m : nbr) {
        if (m < 0 || !inside[m]) continue;
        const std::int32_t o = out[static_cast<std::size_t>(m)];
        if (o < 0) {
          if (labels[m] == orig && size < max_size) {
            out[static_cast<std::size_t>(m)] = next_label;
            queue[static_cast<std::size_t>(size++)] = static_cast<std::int32_t>(m);
          }
        } else if (o != next_label && adjacent < 0) {
          adjacent = o;
        }
      }
    }
    if (size < min_size && adjacent >= 0) {
      for (std::ptrdiff_t i = 0; i < size; ++i) out[static_cast<std::size_t>(queue[static_cast<std::size_t>(i)])] = adjacent;
    } else {
      ++next_label;
    }
  }
  for (std::ptrdiff_t p = 0; p < n; ++p)
    if (inside[p]) labels[p] = out[static_cast<std::size_t>(p)];
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
  if (!(prm.max_size_factor >= 1 && std::isfinite(prm.max_size_factor)))
    throw std::invalid_argument("slic: max_size_factor must be finite and >= 1, got " +
                                std::to_string(prm.max_size_factor));

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
      const std::ptrdiff_t x0 = std::max<std::ptrdiff_t>(0, cx - win), x1 = std::min<std::ptrdiff_t>(w - 1, cx + win);
      for (std::ptrdiff_t y = y0; y <= y1; ++y) {
        const float dy = static_cast<float>(y) - c.y;
        const std::ptrdiff_t o = y * w + x0;
        assign_row(L.data() + o, A.data() + o, B.data() + o, xs.data() + x0, dist.data() + o, labels + o, x1 - x0 + 1,
                   c.l, c.a, c.b, c.x, wxy, wxy * dy * dy, static_cast<std::int32_t>(k));
      }
    }
    // Update the centres (means of their pixels) and count the pixels that changed centre.
    std::fill(acc.begin(), acc.end(), 0.0);
    std::ptrdiff_t changed = 0;
    for (std::ptrdiff_t y = 0; y < h; ++y) {
      const std::int32_t* lr = labels + y * w;
      const std::int32_t* pr = previous.data() + y * w;
      for (std::ptrdiff_t x = 0; x < w; ++x) {
        const std::int32_t k = lr[x];
        changed += k != pr[x];
        if (k < 0) continue;
        const std::size_t p = static_cast<std::size_t>(y * w + x);
        double* a = acc.data() + static_cast<std::size_t>(k) * 6;
        a[0] += L[p];
        a[1] += A[p];
        a[2] += B[p];
        a[3] += static_cast<double>(y);
        a[4] += static_cast<double>(x);
        a[5] += 1.0;
      }
    }
    if (changed == 0) break;  // a fixed point: further iterations change nothing
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
  if (prm.enforce_connectivity) {
    const double max_sz = std::min(prm.max_size_factor * segment_size, static_cast<double>(n));
    return enforce_connectivity(labels, h, w, inside.data(), static_cast<std::ptrdiff_t>(prm.min_size_factor * segment_size),
                                static_cast<std::ptrdiff_t>(max_sz));
  }
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
