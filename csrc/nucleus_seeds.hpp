// The nuclei stage's distance map and seeds, one nucleus component at a time (for her2fast.nuclei).
//
// component_distance_maxima: for the kept components of a label map, the Euclidean distance of each
// of their pixels to the nearest pixel outside all kept components (distance_transform_edt of the
// kept-component mask) and the h-maxima of that distance (h_maxima, height < 1), computed in each
// component's bounding box grown by one pixel instead of over the whole image. The result equals the
// whole-image computation on every pixel:
// - distance: the nearest pixel outside the kept mask from a pixel p of component C lies in C's box
//   grown by one (walking from p along a row or column, the first pixel not in C is not in the mask,
//   or it would be 8-connected to C, and it lies in the grown box); and counting other components'
//   pixels as outside changes nothing (on the digital line from p to such a pixel d, the first pixel
//   not in C is outside the mask, inside the box, and no farther than d);
// - h-maxima: the reconstruction of (distance - height) under the distance reaches a pixel of C from
//   outside C only through pixels of distance 0, so with a value <= 0, below every pixel of C's own
//   marker (distance >= 1 > height): C's reconstruction, and its maxima, are C's own.
// Pixels outside the kept components get distance 0 and no maximum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// `labels` (h x w, contiguous, 0..n_labels), `keep` (n_labels + 1 flags; keep[0] is ignored) ->
/// `dist` (h x w float32) and `peaks` (h x w, 1 = a maximum of height >= `height` of the distance).
/// Throws std::invalid_argument for a label outside 0..n_labels, a height outside (0, 1), or a kept
/// mask that covers the whole image (no pixel to measure to: use the whole-image functions).
void component_distance_maxima(const std::int32_t* labels, std::ptrdiff_t h, std::ptrdiff_t w, const std::uint8_t* keep,
                               std::int32_t n_labels, double height, float* dist, std::uint8_t* peaks);

}  // namespace her2fast
