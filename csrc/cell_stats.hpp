// Per-cell statistics over a tile's label maps, for her2fast.cells.measure_tile: each is one pass over
// the tile where the NumPy formulation built several tile-sized temporaries (index maps, masks,
// float64 copies). For the inputs measure_tile passes, every result equals the NumPy formulation's
// bit for bit (same operations in the same order; the build has no FMA contraction).
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// The cells' flood landscape and membrane mask from the membrane probability `prob` and the DAB
/// optical density `od` (both h x w float32): with s = max(od, 0), s = s / (s + 1), s = s * od_weight,
///   membrane (prob >= threshold): land = prob + s, mask = 1;
///   elsewhere: land = half_threshold * (prob / threshold + min(s, stain_cap)), mask = 0,
/// all in float32 (half_threshold and stain_cap are passed as float32 values, as NumPy rounds them).
void cell_landscape(const float* prob, const float* od, std::ptrdiff_t n, float threshold, float half_threshold,
                    float od_weight, float stain_cap, float* land, std::uint8_t* mask);

/// For each i < m: the largest (x - bx - fx)^2 + (y - by - fy)^2 over the pixels (x, y) of region
/// `region_ids[i]` in `regions` (h x w int32, < 0 = no region), with (bx, by) = centre_base[i] and
/// (fx, fy) = centre_frac[i]; 0 for a region without pixels. A region listed twice counts for its
/// last row only (the other rows get 0). Throws std::invalid_argument for a negative region id.
void region_max_dist2(const std::int32_t* regions, std::ptrdiff_t h, std::ptrdiff_t w, std::int32_t m,
                      const std::int32_t* region_ids, const std::int32_t* centre_base, const double* centre_frac,
                      double* out);

/// Mean of `values` (float32, summed as double in pixel order) over the pixels of each label
/// 1..n_labels of `labels` (int32; <= 0 = none) where `exclude` (uint8) and `exclude_labels` (int32)
/// are both 0 (either may be null: nothing excluded by it); 0 for a label without such pixels.
/// Labels above n_labels throw std::invalid_argument.
void label_means(const std::int32_t* labels, const float* values, const std::uint8_t* exclude,
                 const std::int32_t* exclude_labels, std::ptrdiff_t n, std::int32_t n_labels, double* mean);

}  // namespace her2fast
