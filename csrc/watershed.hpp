// Seeded watershed (priority flood) for nucleus-seeded cell territories.
//
// seeded_watershed: the marker-controlled watershed of scikit-image
// (`skimage.segmentation.watershed(elevation, markers, connectivity=1, mask=mask)`, compactness 0),
// whose result it equals on inputs without ties (with connectivity 8: connectivity=2's), extended by
// constraints that make territories stop at membranes and stay cell-sized:
//
//   - queue: pixels leave in the order of (elevation, age) (a hierarchical queue: one first-in first-out
//     level per distinct elevation, levels ordered by a radix sort of the elevations; the same pop order as
//     one heap of (elevation, age)); markers enter in raster order, every later push gets the next age, so
//     ties are first-in first-out and the order depends only on the relative positions of pixels
//     (translating the image translates the result). A pixel takes the label of the neighbour that
//     pushes it first (claim at push, as scikit-image without compactness).
//   - 4-connectivity (up, left, right, down; scikit-image's connectivity=1) or 8-connectivity (then
//     the diagonals up-left, up-right, down-left, down-right; connectivity=2); neighbours are visited
//     in that order. Pixels outside the image or where mask == 0 are never labelled.
//   - barrier (membranes): a non-marker pixel whose elevation is >= barrier may pass its label only to
//     neighbours that are also >= barrier: a flood that climbed into a membrane runs along it but does
//     not come down on the far side. barrier = +inf disables it.
//   - climb (optional; off = scikit-image's rule): a pixel that is claimed but still waiting in the
//     queue is taken over by a later flood that reaches it from strictly higher ground, as long as
//     that flood is still climbing (its pixel is strictly below the waiting one; on a plateau nothing
//     is taken over). At a cliff -- a stained
//     membrane rising gently from its own cell and dropping sharply into the unstained neighbour --
//     the ridge pixel then goes to the cell it rises from, not to the neighbour that touched it first.
//   - max_radius (cell size): label k may only claim pixels within max_radius of its centre
//     (centre_base[k] + centre_frac[k], pixel units, pixel (y, x) at its centre). max_radius < 0
//     disables it. Centres are given as an integer base pixel plus a fraction so that distances
//     are computed bit-identically wherever a tile starts (the difference of two integer pixel
//     positions is exact).
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// Floods `markers` (h x w, contiguous, labels 0..n_labels, 0 = unlabelled) over `elevation`
/// (h x w, finite) into `out` (h x w): labels 1..n_labels or 0 where no flood arrived.
/// `mask` (h x w, nonzero = may be labelled) may be null. `centre_base` (int32, (n_labels + 1) x 2:
/// x, y per label, row 0 unused) and `centre_frac` (double, same shape, in [0, 1)) may be null only
/// when max_radius < 0. `climb`: see above. Throws std::invalid_argument on bad arguments (the value in the message).
void seeded_watershed(const float* elevation, std::ptrdiff_t h, std::ptrdiff_t w, const std::int32_t* markers,
                      std::int32_t n_labels, const std::uint8_t* mask, float barrier, double max_radius,
                      const std::int32_t* centre_base, const double* centre_frac, bool climb, std::int32_t* out,
                      int connectivity = 4);

}  // namespace her2fast
