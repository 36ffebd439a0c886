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

namespace her2fast {

/// Reconstructs `marker` (h x w, contiguous) under `mask` (h x w) into `out` (h x w; may alias
/// `marker`). Requires marker <= mask everywhere and finite values; throws std::invalid_argument
/// otherwise (the first offending pixel in the message).
void reconstruct_dilation(const float* marker, const float* mask, std::ptrdiff_t h, std::ptrdiff_t w, float* out);

}  // namespace her2fast
