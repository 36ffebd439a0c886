#include "lbp.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "simd_dispatch.hpp"

namespace her2fast {
namespace {

constexpr double kPi = 3.141592653589793;  // == numpy.pi

// numpy.round(x, 5): multiply by 10**5, round half to even, divide.
double round5(double x) { return std::nearbyint(x * 100000.0) / 100000.0; }

struct Neighbour {
  bool integral;                 // both offsets are whole numbers: no interpolation
  int dr_int;                    // integral row offset (integral neighbours)
  int dc_int;                    // integral column offset
  double rp;                     // row offset as scikit-image computes it
  int oc0, oc1;                  // floor / ceil of the column offset
  std::vector<double> dc, omdc;  // per-column interpolation weight dc and 1 - dc
};

void check_args(const void* img, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride, int P, double R,
                const void* out, std::ptrdiff_t out_stride) {
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

// Horizontal step of the bilinear interpolation for one image row and one neighbour:
// H[c] = (1 - dc[c]) * row[c + oc0] + dc[c] * row[c + oc1]  (scikit-image's "top"/"bottom").
// The same row serves as "bottom" for pixel row r and as "top" for pixel row r + 1, so it is
// computed once and cached (RowCache) -- bit-identical to computing it twice.
template <typename T>
inline __attribute__((always_inline)) void hinterp_row(const T* __restrict row, const double* __restrict dc,
                                                       const double* __restrict omdc, int oc0, int oc1,
                                                       std::ptrdiff_t w, double* __restrict H) {
  for (std::ptrdiff_t c = 0; c < w; ++c)
    H[c] = omdc[c] * static_cast<double>(row[c + oc0]) + dc[c] * static_cast<double>(row[c + oc1]);
}

// Vertical step and threshold: bit[c] = ((1 - dr) * top[c] + dr * bottom[c]) - centre[c] >= 0.
template <typename T>
inline __attribute__((always_inline)) void vinterp_threshold_row(const double* __restrict top,
                                                                 const double* __restrict bottom, double dr,
                                                                 double omdr, const T* __restrict centre,
                                                                 std::ptrdiff_t w, std::uint8_t* __restrict bit) {
  for (std::ptrdiff_t c = 0; c < w; ++c)
    bit[c] = ((omdr * top[c] + dr * bottom[c]) - static_cast<double>(centre[c])) >= 0.0;
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

// Runtime-dispatched instances (GCC target_clones cannot clone templates directly).
HER2FAST_HOT void hinterp(const double* row, const double* dc, const double* omdc, int oc0, int oc1, std::ptrdiff_t w,
                          double* H) {
  hinterp_row(row, dc, omdc, oc0, oc1, w, H);
}
HER2FAST_HOT void vinterp(const double* top, const double* bottom, double dr, double omdr, const double* centre,
                          std::ptrdiff_t w, std::uint8_t* bit) {
  vinterp_threshold_row(top, bottom, dr, omdr, centre, w, bit);
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
HER2FAST_HOT void widen_row(const std::uint8_t* src, std::ptrdiff_t n, double* dst) {
  for (std::ptrdiff_t i = 0; i < n; ++i) dst[i] = static_cast<double>(src[i]);
}

inline void exact_dispatch(const std::uint8_t* n, const std::uint8_t* ctr, std::ptrdiff_t w, std::uint8_t* bit) {
  exact_row_u8(n, ctr, w, bit);
}
inline void exact_dispatch(const double* n, const double* ctr, std::ptrdiff_t w, std::uint8_t* bit) {
  exact_row_f64(n, ctr, w, bit);
}

// Two horizontally interpolated rows per neighbour, tagged with the image row they hold.
struct RowCache {
  std::vector<double> buf[2];
  std::ptrdiff_t row[2] = {std::numeric_limits<std::ptrdiff_t>::min(), std::numeric_limits<std::ptrdiff_t>::min()};
};

template <typename T>
void lbp_uniform_impl(const T* img, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride, int P, double R,
                      std::uint8_t* out, std::ptrdiff_t out_stride) {
  check_args(img, h, w, stride, P, R, out, out_stride);
  const std::vector<Neighbour> nbs = make_neighbours(P, R, w);

  // Zero-padded copy: every neighbour read is in bounds and reads 0 outside the image,
  // exactly as scikit-image's constant mode with cval 0.
  const std::ptrdiff_t pad = static_cast<std::ptrdiff_t>(std::ceil(R)) + 1;
  const std::ptrdiff_t wp = w + 2 * pad, hp = h + 2 * pad;
  // The padded copy lives in a per-thread buffer kept between calls (up to 64 MiB): a thread that
  // runs tile after tile reuses mapped pages instead of faulting in fresh ones on every call, which
  // would also serialise threads in the kernel. Every element is written below before it is read.
  thread_local std::vector<T> tl_padded;
  std::vector<T> own_padded;
  const std::size_t n_padded = static_cast<std::size_t>(wp * hp);
  const bool reuse = n_padded * sizeof(T) <= (std::size_t{64} << 20);
  std::vector<T>& padded = reuse ? tl_padded : own_padded;
  padded.assign(n_padded, T(0));
  for (std::ptrdiff_t r = 0; r < h; ++r) {
    const T* src = img + r * stride;
    T* dst = padded.data() + (r + pad) * wp + pad;
    for (std::ptrdiff_t c = 0; c < w; ++c) dst[c] = src[c];
  }
  auto row_ptr = [&](std::ptrdiff_t r) { return padded.data() + (r + pad) * wp + pad; };
  // The interpolation runs in double: padded rows as doubles, converted once per row into a ring
  // (rows r - ceil(R) .. r + ceil(R) are live while row r is processed). float64 input is used as is.
  const std::ptrdiff_t ring = 2 * (pad - 1) + 2;
  std::vector<double> wide(std::is_same_v<T, double> ? 0 : static_cast<std::size_t>(ring * wp));
  std::vector<std::ptrdiff_t> wide_row(static_cast<std::size_t>(ring), std::numeric_limits<std::ptrdiff_t>::min());
  auto double_row = [&](std::ptrdiff_t y) -> const double* {
    if constexpr (std::is_same_v<T, double>) {
      return row_ptr(y);
    } else {
      const std::size_t slot = static_cast<std::size_t>(((y % ring) + ring) % ring);
      double* d = wide.data() + static_cast<std::ptrdiff_t>(slot) * wp;
      if (wide_row[slot] != y) {
        widen_row(row_ptr(y) - pad, wp, d);
        wide_row[slot] = y;
      }
      return d + pad;
    }
  };

  std::vector<RowCache> caches(static_cast<std::size_t>(P));
  for (int i = 0; i < P; ++i)
    if (!nbs[static_cast<std::size_t>(i)].integral)
      for (auto& b : caches[static_cast<std::size_t>(i)].buf) b.resize(static_cast<std::size_t>(w));
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
        RowCache& cache = caches[static_cast<std::size_t>(i)];
        // Slot holding image row y, computing it (into the slot other than `keep`) on a miss.
        auto slot_of = [&](std::ptrdiff_t y, int keep) {
          for (int s = 0; s < 2; ++s)
            if (cache.row[s] == y) return s;
          const int s = keep == 0 ? 1 : 0;
          hinterp(double_row(y), nb.dc.data(), nb.omdc.data(), nb.oc0, nb.oc1, w, cache.buf[s].data());
          cache.row[s] = y;
          return s;
        };
        const int top = slot_of(static_cast<std::ptrdiff_t>(minr), -1);
        const int bottom = slot_of(static_cast<std::ptrdiff_t>(std::ceil(rr)), top);
        vinterp(cache.buf[top].data(), cache.buf[bottom].data(), dr, 1.0 - dr, double_row(r), w, bit);
      }
      accumulate(bit, prev, i == 0, w, sum.data(), changes.data());
      std::swap(bit, prev);
    }
    std::uint8_t* o = out + r * out_stride;
    for (std::ptrdiff_t c = 0; c < w; ++c)
      o[c] = changes[static_cast<std::size_t>(c)] <= 2 ? sum[static_cast<std::size_t>(c)] : non_uniform;
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
