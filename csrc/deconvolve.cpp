#include "deconvolve.hpp"

#include <stdexcept>

#include "simd_dispatch.hpp"

namespace her2fast {

HER2FAST_HOT
void deconvolve_rgb(const std::uint8_t* rgb, std::ptrdiff_t n, const float* lut, const float* unmix, float* out) {
  if (rgb == nullptr || lut == nullptr || unmix == nullptr || out == nullptr)
    throw std::invalid_argument("deconvolve_rgb: null pointer");
  if (n < 0) throw std::invalid_argument("deconvolve_rgb: negative pixel count");
  const float u00 = unmix[0], u01 = unmix[1], u02 = unmix[2];
  const float u10 = unmix[3], u11 = unmix[4], u12 = unmix[5];
  const float u20 = unmix[6], u21 = unmix[7], u22 = unmix[8];
  float* c0 = out;
  float* c1 = out + n;
  float* c2 = out + 2 * n;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float r = lut[3 * rgb[3 * i]], g = lut[3 * rgb[3 * i + 1] + 1], b = lut[3 * rgb[3 * i + 2] + 2];
    c0[i] = r * u00 + g * u10 + b * u20;
    c1[i] = r * u01 + g * u11 + b * u21;
    c2[i] = r * u02 + g * u12 + b * u22;
  }
}

}  // namespace her2fast
