// Grey-level morphological reconstruction by dilation (for h-maxima in her2fast.nuclei).
//
// reconstruct_dilation: the reconstruction of `marker` under `mask` with the 8-connected (3x3)
// neighbourhood, i.e. the limit of repeated geodesic dilations min(dilate(J), mask), as
// `skimage.morphology.reconstruction(marker, mask, method="dilation")` computes it. Vincent's hybrid
// algorithm (IEEE TIP 1993): a raster and an anti-raster sweep, then a FIFO propagation from the
// pixels that can still grow. Only max and min of input values are taken, so the result equals
// scikit-image's bit for bit (every output value is one of the inputs' values).
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// Reconstructs `marker` (h x w, contiguous) under `mask` (h x w) into `out` (h x w; may alias
/// `marker`). Requires marker <= mask everywhere and finite values; throws std::invalid_argument
/// otherwise (the first offending pixel in the message).
void reconstruct_dilation(const float* marker, const float* mask, std::ptrdiff_t h, std::ptrdiff_t w, float* out);

/// The regional maxima of height at least `height` (> 0) of `image` (h x w float32, finite) into
/// `out` (h x w, 1 = maximum), following `skimage.morphology.h_maxima`'s float path (the range test
/// and the residue in double, where scikit-image uses float32: they can differ only when `height`
/// equals the range or a residue to the last float32 bit):
/// all zeros when height > max - min (float32); otherwise the reconstruction by dilation of
/// marker = (image - float32(height)) - 2e-6f * |image| (scikit-image's relative resolution, in
/// float32) under the image, and out = (double(image) - double(reconstruction) >= height).
/// Throws std::invalid_argument for a non-finite image or height <= 0.
void h_maxima(const float* image, std::ptrdiff_t h, std::ptrdiff_t w, double height, std::uint8_t* out);

}  // namespace her2fast
