// Colour deconvolution of RGB pixels into stain concentrations (for her2fast.stain.deconvolve), in
// one pass: the optical density of each channel from a lookup table, then the 3 x 3 unmixing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// For each of the n RGB pixels (`rgb`, n x 3 uint8): od_c = lut[3 * v_c + c] (lut: 256 x 3 float32,
/// the optical density of level v in channel c), then, in float32,
///   out[k * n + i] = od_r * unmix[k] + od_g * unmix[3 + k] + od_b * unmix[6 + k]   (k = 0, 1, 2),
/// i.e. the row vector (od_r, od_g, od_b) times the 3 x 3 row-major `unmix`, written as three planes.
void deconvolve_rgb(const std::uint8_t* rgb, std::ptrdiff_t n, const float* lut, const float* unmix, float* out);

}  // namespace her2fast
