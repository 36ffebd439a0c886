#include "membrane_rays.hpp"

#include "simd_dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace her2fast {

namespace {
constexpr double kInfD = std::numeric_limits<double>::infinity();
}  // namespace

void membrane_rays(const std::int32_t* labels, const std::uint8_t* membrane, const float* dab_od, std::ptrdiff_t h,
                   std::ptrdiff_t w, std::int32_t n_cells, const std::int32_t* centre_base, const double* centre_frac,
                   int n_rays, double max_length, double outside_reach, double max_run, double cap_radius,
                   double cap_reach, float* run_length, float* peak_od, const std::int32_t* cell_labels) {
  if (labels == nullptr || membrane == nullptr || dab_od == nullptr || run_length == nullptr || peak_od == nullptr)
    throw std::invalid_argument("membrane_rays: null pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("membrane_rays: image must not be empty, got " + std::to_string(h) + "x" +
                                std::to_string(w));
  if (n_cells < 0) throw std::invalid_argument("membrane_rays: n_cells must be >= 0, got " + std::to_string(n_cells));
  if (n_cells > 0 && (centre_base == nullptr || centre_frac == nullptr))
    throw std::invalid_argument("membrane_rays: null centres");
  if (n_rays < 1 || n_rays > 4096)
    throw std::invalid_argument("membrane_rays: n_rays must be in 1..4096, got " + std::to_string(n_rays));
  if (!(max_length > 0.0) || !std::isfinite(max_length))
    throw std::invalid_argument("membrane_rays: max_length must be finite and > 0, got " + std::to_string(max_length));
  if (!(outside_reach >= 0.0) || !std::isfinite(outside_reach))
    throw std::invalid_argument("membrane_rays: outside_reach must be finite and >= 0, got " +
                                std::to_string(outside_reach));
  if (!(max_run > 0.0) || !std::isfinite(max_run))
    throw std::invalid_argument("membrane_rays: max_run must be finite and > 0, got " + std::to_string(max_run));
  if (std::isnan(cap_radius) || (std::isfinite(cap_radius) && cap_radius < 0.0) || cap_radius == -kInfD)
    throw std::invalid_argument("membrane_rays: cap_radius must be >= 0 or +inf, got " + std::to_string(cap_radius));
  if (!(cap_reach >= 0.0) || !std::isfinite(cap_reach))
    throw std::invalid_argument("membrane_rays: cap_reach must be finite and >= 0, got " + std::to_string(cap_reach));

  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  std::vector<double> cs(static_cast<std::size_t>(n_rays)), sn(static_cast<std::size_t>(n_rays));
  for (int r = 0; r < n_rays; ++r) {
    const double th = kTwoPi * (r + 0.5) / n_rays;
    cs[static_cast<std::size_t>(r)] = std::cos(th);
    sn[static_cast<std::size_t>(r)] = std::sin(th);
  }
  for (std::int32_t k = 0; k < n_cells; ++k) {
    const std::int32_t own = cell_labels != nullptr ? cell_labels[k] : k + 1;
    const double fx = centre_frac[2 * k], fy = centre_frac[2 * k + 1];
    if (!(fx >= 0.0 && fx < 1.0 && fy >= 0.0 && fy < 1.0))
      throw std::invalid_argument("membrane_rays: centre_frac of cell " + std::to_string(k) +
                                  " must be in [0, 1), got " + std::to_string(fx) + ", " + std::to_string(fy));
    // Grid coordinates: pixel x spans [x - 1/2, x + 1/2); the start cell and the offset inside it.
    std::ptrdiff_t cx0 = centre_base[2 * k], cy0 = centre_base[2 * k + 1];
    double ux = fx + 0.5, uy = fy + 0.5;  // position inside pixel cx0 (shifted by 1/2), in [0.5, 1.5)
    if (ux >= 1.0) {
      ux -= 1.0;
      ++cx0;
    }
    if (uy >= 1.0) {
      uy -= 1.0;
      ++cy0;
    }
    for (int r = 0; r < n_rays; ++r) {
      float* run_out = run_length + static_cast<std::ptrdiff_t>(k) * n_rays + r;
      float* od_out = peak_od + static_cast<std::ptrdiff_t>(k) * n_rays + r;
      *run_out = 0.0f;
      *od_out = 0.0f;
      const double dx = cs[static_cast<std::size_t>(r)], dy = sn[static_cast<std::size_t>(r)];
      std::ptrdiff_t ix = cx0, iy = cy0;
      const int sx = dx > 0 ? 1 : -1, sy = dy > 0 ? 1 : -1;
      double tmx = dx > 0 ? (1.0 - ux) / dx : dx < 0 ? ux / -dx : kInf;
      double tmy = dy > 0 ? (1.0 - uy) / dy : dy < 0 ? uy / -dy : kInf;
      const double tdx = dx != 0 ? 1.0 / std::fabs(dx) : kInf, tdy = dy != 0 ? 1.0 / std::fabs(dy) : kInf;
      double t0 = 0.0;
      bool inside = true, hit = false;
      std::int32_t run_label = 0;
      double t_stop = 0.0, run_start = 0.0, run_end = 0.0;
      bool capped = false;
      float peak = 0.0f;
      while (true) {
        if (ix < 0 || iy < 0 || ix >= w || iy >= h) break;
        const double t1 = std::min(tmx, tmy);
        const std::ptrdiff_t p = iy * w + ix;
        const bool mem = membrane[p] != 0;
        if (!hit) {
          if (t0 > max_length) break;
          if (inside && labels[p] != own) {
            inside = false;
            t_stop = t0 + outside_reach;
            // left at the radius limit (the exit pixel lies beyond cap_radius - 1.5: the watershed could
            // not, or barely could, give it to this cell): the cell may reach farther than the cap, so
            // membrane up to cap_radius + cap_reach from the centre counts. Only the geometry decides,
            // not the labels beyond (they depend on cells farther away), and the limit is measured from
            // the centre, not from the exit, so a territory edge that moved by a pixel changes nothing.
            const double ex = static_cast<double>(ix - centre_base[2 * k]) - fx;
            const double ey = static_cast<double>(iy - centre_base[2 * k + 1]) - fy;
            const double lim = std::max(cap_radius - 1.5, 0.0);
            if (ex * ex + ey * ey > lim * lim) {
              capped = true;
              t_stop = std::max(t_stop, cap_radius + cap_reach);
            }
          }
          if (!inside && t0 >= t_stop) break;
          if (mem) {
            hit = true;
            // past the cap the run is followed over any label (the labels there depend on farther cells)
            run_label = (!inside && capped) ? -1 : labels[p];
            run_start = t0;
            run_end = t1;
            peak = dab_od[p];
          }
        } else {
          if (!mem || (run_label >= 0 && labels[p] != run_label) || t0 - run_start >= max_run) break;
          run_end = t1;
          peak = std::max(peak, dab_od[p]);
        }
        // next pixel (x first at an exact corner)
        if (tmx <= tmy) {
          ix += sx;
          t0 = tmx;
          tmx += tdx;
        } else {
          iy += sy;
          t0 = tmy;
          tmy += tdy;
        }
      }
      if (hit) {
        // a run through a pixel corner has length 0 but is a hit: keep it positive
        *run_out = std::max(static_cast<float>(std::min(run_end, run_start + max_run) - run_start), 1e-3f);
        *od_out = peak;
      }
    }
  }
}

namespace {
// Bilinear value of `img` at (y, x), coordinates clamped to the image (scipy.ndimage.map_coordinates,
// order=1, mode="nearest"), rounded to float as scipy rounds to the input's dtype.
inline float bilinear_clamped(const float* img, std::ptrdiff_t h, std::ptrdiff_t w, double y, double x) {
  y = std::min(std::max(y, 0.0), static_cast<double>(h - 1));
  x = std::min(std::max(x, 0.0), static_cast<double>(w - 1));
  const double fy = std::floor(y), fx = std::floor(x);
  const auto y0 = static_cast<std::ptrdiff_t>(fy), x0 = static_cast<std::ptrdiff_t>(fx);
  const std::ptrdiff_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
  const double ty = y - fy, tx = x - fx;
  const double wy[2] = {1.0 - ty, ty}, wx[2] = {1.0 - tx, tx};
  const std::ptrdiff_t ys[2] = {y0, y1}, xs[2] = {x0, x1};
  double v = 0.0;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) v += static_cast<double>(img[ys[a] * w + xs[b]]) * wy[a] * wx[b];
  return static_cast<float>(v);
}
}  // namespace

// HER2FAST_HOT: the AVX2 / AVX-512 clones round with one instruction (nearbyint, floor) where the
// baseline x86-64 build calls libm (same results: the default rounding mode)
HER2FAST_HOT
void own_side_gate(const std::int32_t* labels, const std::uint8_t* membrane, const float* dab_od, std::ptrdiff_t h,
                   std::ptrdiff_t w, std::int32_t n_cells, const std::int32_t* cell_labels,
                   const std::int32_t* centre_base, const double* centre_frac, const std::uint8_t* covered,
                   const float* run_length, int n_rays, const double* dir_x, const double* dir_y, double max_length,
                   double step, int n05, int n15, int run_extra, double far_weight, double* gated) {
  if (labels == nullptr || membrane == nullptr || dab_od == nullptr || gated == nullptr || dir_x == nullptr ||
      dir_y == nullptr)
    throw std::invalid_argument("own_side_gate: null pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("own_side_gate: image must not be empty, got " + std::to_string(h) + "x" +
                                std::to_string(w));
  if (n_cells < 0) throw std::invalid_argument("own_side_gate: n_cells must be >= 0, got " + std::to_string(n_cells));
  if (n_cells > 0 && (cell_labels == nullptr || centre_base == nullptr || centre_frac == nullptr ||
                      covered == nullptr || run_length == nullptr))
    throw std::invalid_argument("own_side_gate: null cell arrays");
  if (n_rays < 1 || n_rays > 4096)
    throw std::invalid_argument("own_side_gate: n_rays must be in 1..4096, got " + std::to_string(n_rays));
  if (!(step > 0.0) || !std::isfinite(step) || !(max_length > 0.0) || !std::isfinite(max_length) ||
      max_length / step > 1e6)
    throw std::invalid_argument("own_side_gate: step and max_length must be finite and > 0 (max_length / step <= 1e6)");
  if (n05 < 0 || n15 < n05 || run_extra < 0)
    throw std::invalid_argument("own_side_gate: need 0 <= n05 <= n15 and run_extra >= 0");
  if (!(far_weight >= 0.0 && far_weight < 1.0))
    throw std::invalid_argument("own_side_gate: far_weight must be in [0, 1)");
  const std::size_t n_rows = static_cast<std::size_t>(n_cells) * static_cast<std::size_t>(n_rays);
  const auto n_samples = static_cast<std::ptrdiff_t>(std::ceil(max_length / step));  // np.arange(0, max_length, step)
  constexpr double kInf = std::numeric_limits<double>::infinity();

  // pass 1: the first own-membrane sample of every covered ray, and the widest window
  std::vector<std::ptrdiff_t> first(n_rows, -1);
  std::vector<std::ptrdiff_t> runs(n_rows, 0);
  std::ptrdiff_t max_span = -1;
  for (std::int32_t k = 0; k < n_cells; ++k) {
    const double cx = static_cast<double>(centre_base[2 * k]) + centre_frac[2 * k];
    const double cy = static_cast<double>(centre_base[2 * k + 1]) + centre_frac[2 * k + 1];
    for (int r = 0; r < n_rays; ++r) {
      const std::size_t i = static_cast<std::size_t>(k) * n_rays + r;
      if (!covered[i]) continue;
      runs[i] = static_cast<std::ptrdiff_t>(std::nearbyint(run_length[i] / static_cast<float>(step)));
      max_span = std::max(max_span, runs[i] + n05 + n15);
      for (std::ptrdiff_t j = 0; j < n_samples; ++j) {
        const double t = static_cast<double>(j) * step;
        const double xr = std::nearbyint(cx + dir_x[r] * t), yr = std::nearbyint(cy + dir_y[r] * t);
        const auto xi = static_cast<std::ptrdiff_t>(std::min(std::max(xr, 0.0), static_cast<double>(w - 1)));
        const auto yi = static_cast<std::ptrdiff_t>(std::min(std::max(yr, 0.0), static_cast<double>(h - 1)));
        const std::ptrdiff_t q = yi * w + xi;
        if (membrane[q] && labels[q] == cell_labels[k]) {
          first[i] = j;
          break;
        }
      }
    }
  }
  const std::ptrdiff_t width = max_span + 2 * static_cast<std::ptrdiff_t>(n15) + 1;  // samples per window

  // pass 2: profile, peak, ridge, sides
  std::vector<float> prof(static_cast<std::size_t>(std::max<std::ptrdiff_t>(width, 1)));
  for (std::int32_t k = 0; k < n_cells; ++k) {
    const double cx = static_cast<double>(centre_base[2 * k]) + centre_frac[2 * k];
    const double cy = static_cast<double>(centre_base[2 * k + 1]) + centre_frac[2 * k + 1];
    for (int r = 0; r < n_rays; ++r) {
      const std::size_t i = static_cast<std::size_t>(k) * n_rays + r;
      gated[i] = kInf;
      if (!covered[i] || first[i] < 0) continue;
      const std::ptrdiff_t f = first[i], lo = f - n05, hi = f + runs[i] + n15, start = lo - n15;
      // only the samples some window below can read: j >= 0, up to the ridge window's far side
      const std::ptrdiff_t need_lo = std::max<std::ptrdiff_t>(start, 0);
      const std::ptrdiff_t need_hi = std::min(start + width - 1, std::max(hi + n15, f + runs[i] + run_extra));
      for (std::ptrdiff_t j = need_lo; j <= need_hi; ++j) {
        const double t = static_cast<double>(j) * step;
        prof[static_cast<std::size_t>(j - start)] =
            bilinear_clamped(dab_od, h, w, cy + dir_y[r] * t, cx + dir_x[r] * t);
      }
      // last maximum over a window of sample indices [a, b] (j >= 0, inside the profile)
      auto last_argmax = [&](std::ptrdiff_t a, std::ptrdiff_t b) {
        a = std::max<std::ptrdiff_t>({a, 0, start});
        b = std::min(b, start + width - 1);
        std::ptrdiff_t best = -1;
        float bv = -std::numeric_limits<float>::infinity();
        for (std::ptrdiff_t j = a; j <= b; ++j) {
          const float v = prof[static_cast<std::size_t>(j - start)];
          if (best < 0 || v >= bv) {
            bv = v;
            best = j;
          }
        }
        return best;
      };
      const std::ptrdiff_t pk = last_argmax(f, f + runs[i] + run_extra);
      const std::ptrdiff_t ridge = last_argmax(lo, hi);
      if (pk < 0 || ridge < 0) continue;
      const double peak = static_cast<double>(prof[static_cast<std::size_t>(pk - start)]);
      auto side_mean = [&](std::ptrdiff_t a, std::ptrdiff_t b) {
        a = std::max<std::ptrdiff_t>({a, 0, start});
        b = std::min(b, start + width - 1);
        float sum = 0.0f;
        std::ptrdiff_t cnt = 0;
        for (std::ptrdiff_t j = a; j <= b; ++j, ++cnt) sum += prof[static_cast<std::size_t>(j - start)];
        return static_cast<double>(sum) / static_cast<double>(std::max<std::ptrdiff_t>(cnt, 1));
      };
      const double inner = side_mean(ridge - n15, ridge - n05);
      const double outer = side_mean(ridge + n05, ridge + n15);
      double gate = (inner - far_weight * outer) / std::max((1.0 - far_weight) * inner, 1e-6);
      gate = std::min(std::max(gate, 0.0), 1.0);
      gated[i] = peak * gate;
    }
  }
}

}  // namespace her2fast
