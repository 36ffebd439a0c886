// Exact Euclidean distance transform (for the nuclei stage's watershed in her2fast.nuclei).
//
// distance_transform_edt: for each nonzero pixel of `mask`, the Euclidean distance to the nearest
// zero pixel, as `scipy.ndimage.distance_transform_edt(mask)` computes it (unit sampling); zero
// pixels get 0. Felzenszwalb & Huttenlocher's separable algorithm (Theory of Computing 8, 2012):
// per column the squared distance to the nearest zero, then per row the lower envelope of the
// parabolas (y - q)^2 + f(q). Squared distances are exact integers; the result is sqrt of the
// squared distance in double precision rounded to float, which equals scipy's float64 result cast
// to float32. A mask without any zero pixel is rejected (scipy returns distances to a phantom
// pixel outside the image then; callers handle that case themselves).
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// Distance transform of `mask` (h x w, contiguous, nonzero = foreground) into `out` (h x w).
/// Throws std::invalid_argument for an empty image, one too large, or one without a zero pixel.
void distance_transform_edt(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, float* out);

}  // namespace her2fast
