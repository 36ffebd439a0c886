#include "lbp.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "simd_dispatch.hpp"

namespace her2fast {
namespace {

constexpr double kPi = 3.141592653589793;  // == numpy.pi

// numpy.round(x, 5): multiply by 10**5, round half to even, divide.
double round5(double x) { return std::nearbyint(x * 100000.0) / 100000.0; }

struct Neighbour {
  bool integral;    // both offsets are whole numbers: no interpolation
  int dr_int;       // integral row offset (integral neighbours)
  int dc_int;       // integral column offset
  double rp;        // row offset as scikit-image computes it
  int oc0, oc1;     // floor / ceil of the column offset
  std::vector<double> dc, omdc;  // per-column interpolation weight dc and 1 - dc
};

void check_args(const void* img, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride, int P,
                double R, const void* out, std::ptrdiff_t out_stride) {
  if (img == nullptr || out == nullptr) throw std::invalid_argument("lbp_uniform: null image or output pointer");
  if (h < 1 || w < 1)
    throw std::invalid_argument("lbp_uniform: image must not be empty, got " + std::to_string(h) + "x" +
                                std::to_string(w));
  if (stride < w || out_stride < w)
    throw std::invalid_argument("lbp_uniform: stride " + std::to_string(stride) + " / out_stride " +
                                std::to_string(out_stride) + " smaller than width " + std::to_string(w));
  if (P < 1 || P > kLbpMaxPoints)
    throw std::invalid_argument("lbp_uniform: P must be in 1.." + std::to_string(kLbpMaxPoints) + ", got " +
                                std::to_string(P));
  if (!(std::isfinite(R) && R > 0.0) || R > 1000.0)
    throw std::invalid_argument("lbp_uniform: R must be finite and in (0, 1000], got " + std::to_string(R));
}

std::vector<Neighbour> make_neighbours(int P, double R, std::ptrdiff_t w) {
  std::vector<Neighbour> nbs(static_cast<std::size_t>(P));
  for (int i = 0; i < P; ++i) {
    const double angle = (2.0 * kPi) * static_cast<double>(i) / static_cast<double>(P);
    const double rp = round5(-R * std::sin(angle));
    const double cp = round5(R * std::cos(angle));
    Neighbour& nb = nbs[static_cast<std::size_t>(i)];
    nb.rp = rp;
    nb.integral = (rp == std::floor(rp)) && (cp == std::floor(cp));
    nb.dr_int = static_cast<int>(rp);
    nb.dc_int = static_cast<int>(cp);
    nb.oc0 = static_cast<int>(std::floor(cp));
    nb.oc1 = static_cast<int>(std::ceil(cp));
    if (!nb.integral) {
      nb.dc.resize(static_cast<std::size_t>(w));
      nb.omdc.resize(static_cast<std::size_t>(w));
      for (std::ptrdiff_t c = 0; c < w; ++c) {
        const double cc = static_cast<double>(c) + cp;
        const double minc = std::floor(cc);
        if (minc != static_cast<double>(c + nb.oc0) || std::ceil(cc) != static_cast<double>(c + nb.oc1))
          throw std::logic_error("lbp_uniform: column offsets are not translation invariant");
        nb.dc[static_cast<std::size_t>(c)] = cc - minc;
        nb.omdc[static_cast<std::size_t>(c)] = 1.0 - (cc - minc);
      }
    }
  }
  return nbs;
}

// One row of one interpolated neighbour: bit[c] = bilinear(...) - centre[c] >= 0.
template <typename T>
inline __attribute__((always_inline)) void interp_row(const T* __restrict rowT, const T* __restrict rowB,
                                                      const T* __restrict centre, const double* __restrict dc,
                                                      const double* __restrict omdc, double dr, double omdr,
                                                      int oc0, int oc1, std::ptrdiff_t w,
                                                      std::uint8_t* __restrict bit) {
  for (std::ptrdiff_t c = 0; c < w; ++c) {
    const double top = omdc[c] * static_cast<double>(rowT[c + oc0]) + dc[c] * static_cast<double>(rowT[c + oc1]);
    const double bottom =
        omdc[c] * static_cast<double>(rowB[c + oc0]) + dc[c] * static_cast<double>(rowB[c + oc1]);
    const double v = omdr * top + dr * bottom;
    bit[c] = (v - static_cast<double>(centre[c])) >= 0.0;
  }
}

template <typename T>
inline __attribute__((always_inline)) void exact_row(const T* __restrict nrow, const T* __restrict centre,
                                                     std::ptrdiff_t w, std::uint8_t* __restrict bit) {
  for (std::ptrdiff_t c = 0; c < w; ++c) bit[c] = nrow[c] >= centre[c];
}

inline __attribute__((always_inline)) void accumulate_row(const std::uint8_t* __restrict bit,
                                                          const std::uint8_t* __restrict prev, bool first,
                                                          std::ptrdiff_t w, std::uint8_t* __restrict sum,
                                                          std::uint8_t* __restrict changes) {
  if (first) {
    for (std::ptrdiff_t c = 0; c < w; ++c) {
      sum[c] = bit[c];
      changes[c] = 0;
    }
  } else {
    for (std::ptrdiff_t c = 0; c < w; ++c) {
      sum[c] = static_cast<std::uint8_t>(sum[c] + bit[c]);
      changes[c] = static_cast<std::uint8_t>(changes[c] + (bit[c] != prev[c]));
    }
  }
}

HER2FAST_HOT void interp_row_u8(const std::uint8_t* rowT, const std::uint8_t* rowB, const std::uint8_t* centre,
                                const double* dc, const double* omdc, double dr, double omdr, int oc0, int oc1,
                                std::ptrdiff_t w, std::uint8_t* bit) {
  interp_row(rowT, rowB, centre, dc, omdc, dr, omdr, oc0, oc1, w, bit);
}
HER2FAST_HOT void interp_row_f64(const double* rowT, const double* rowB, const double* centre, const double* dc,
                                 const double* omdc, double dr, double omdr, int oc0, int oc1, std::ptrdiff_t w,
                                 std::uint8_t* bit) {
  interp_row(rowT, rowB, centre, dc, omdc, dr, omdr, oc0, oc1, w, bit);
}
HER2FAST_HOT void exact_row_u8(const std::uint8_t* nrow, const std::uint8_t* centre, std::ptrdiff_t w,
                               std::uint8_t* bit) {
  exact_row(nrow, centre, w, bit);
}
HER2FAST_HOT void exact_row_f64(const double* nrow, const double* centre, std::ptrdiff_t w, std::uint8_t* bit) {
  exact_row(nrow, centre, w, bit);
}
HER2FAST_HOT void accumulate(const std::uint8_t* bit, const std::uint8_t* prev, bool first, std::ptrdiff_t w,
                             std::uint8_t* sum, std::uint8_t* changes) {
  accumulate_row(bit, prev, first, w, sum, changes);
}

inline void interp_dispatch(const std::uint8_t* a, const std::uint8_t* b, const std::uint8_t* ctr, const double* dc,
                            const double* omdc, double dr, double omdr, int oc0, int oc1, std::ptrdiff_t w,
                            std::uint8_t* bit) {
  interp_row_u8(a, b, ctr, dc, omdc, dr, omdr, oc0, oc1, w, bit);
}
inline void interp_dispatch(const double* a, const double* b, const double* ctr, const double* dc, const double* omdc,
                            double dr, double omdr, int oc0, int oc1, std::ptrdiff_t w, std::uint8_t* bit) {
  interp_row_f64(a, b, ctr, dc, omdc, dr, omdr, oc0, oc1, w, bit);
}
inline void exact_dispatch(const std::uint8_t* n, const std::uint8_t* ctr, std::ptrdiff_t w, std::uint8_t* bit) {
  exact_row_u8(n, ctr, w, bit);
}
inline void exact_dispatch(const double* n, const double* ctr, std::ptrdiff_t w, std::uint8_t* bit) {
  exact_row_f64(n, ctr, w, bit);
}

template <typename T>
void lbp_uniform_impl(const T* img, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride, int P, double R,
                      std::uint8_t* out, std::ptrdiff_t out_stride) {
  check_args(img, h, w, stride, P, R, out, out_stride);
  const std::vector<Neighbour> nbs = make_neighbours(P, R, w);

  // Zero-padded copy: every neighbour read is in bounds and reads 0 outside the image,
  // exactly as scikit-image's constant mode with cval 0.
  const std::ptrdiff_t pad = static_cast<std::ptrdiff_t>(std::ceil(R)) + 1;
  const std::ptrdiff_t wp = w + 2 * pad, hp = h + 2 * pad;
  std::vector<T> padded(static_cast<std::size_t>(wp * hp), T(0));
  for (std::ptrdiff_t r = 0; r < h; ++r) {
    const T* src = img + r * stride;
    T* dst = padded.data() + (r + pad) * wp + pad;
    for (std::ptrdiff_t c = 0; c < w; ++c) dst[c] = src[c];
  }
  auto row_ptr = [&](std::ptrdiff_t r) { return padded.data() + (r + pad) * wp + pad; };

  std::vector<std::uint8_t> bit_a(static_cast<std::size_t>(w)), bit_b(static_cast<std::size_t>(w));
  std::vector<std::uint8_t> sum(static_cast<std::size_t>(w)), changes(static_cast<std::size_t>(w));
  const std::uint8_t non_uniform = static_cast<std::uint8_t>(P + 1);

  for (std::ptrdiff_t r = 0; r < h; ++r) {
    const T* centre = row_ptr(r);
    std::uint8_t* bit = bit_a.data();
    std::uint8_t* prev = bit_b.data();
    for (int i = 0; i < P; ++i) {
      const Neighbour& nb = nbs[static_cast<std::size_t>(i)];
      if (nb.integral) {
        exact_dispatch(row_ptr(r + nb.dr_int) + nb.dc_int, centre, w, bit);
      } else {
        const double rr = static_cast<double>(r) + nb.rp;
        const double minr = std::floor(rr);
        const double dr = rr - minr;
        const T* rowT = row_ptr(static_cast<std::ptrdiff_t>(minr));
        const T* rowB = row_ptr(static_cast<std::ptrdiff_t>(std::ceil(rr)));
        interp_dispatch(rowT, rowB, centre, nb.dc.data(), nb.omdc.data(), dr, 1.0 - dr, nb.oc0, nb.oc1, w, bit);
      }
      accumulate(bit, prev, i == 0, w, sum.data(), changes.data());
      std::swap(bit, prev);
    }
    std::uint8_t* o = out + r * out_stride;
    for (std::ptrdiff_t c = 0; c < w; ++c) o[c] = changes[static_cast<std::size_t>(c)] <= 2 ? sum[static_cast<std::size_t>(c)] : non_uniform;
  }
}

}  // namespace

void lbp_uniform(const std::uint8_t* img, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride, int P, double R,
                 std::uint8_t* out, std::ptrdiff_t out_stride) {
  lbp_uniform_impl(img, h, w, stride, P, R, out, out_stride);
}

void lbp_uniform(const double* img, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride, int P, double R,
                 std::uint8_t* out, std::ptrdiff_t out_stride) {
  lbp_uniform_impl(img, h, w, stride, P, R, out, out_stride);
}

}  // namespace her2fast
