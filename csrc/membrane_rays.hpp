// Membrane along rays from each cell's nucleus centre: completeness, intensity and thickness.
//
// membrane_rays: for cell k (label k + 1 of the territory map) and n_rays directions
// theta_r = 2 pi (r + 1/2) / n_rays, walk the ray from the centre with an exact grid traversal
// (Amanatides & Woo 1987: every pixel the ray passes through, in order, with the ray parameter t
// (pixels) where it enters and leaves; at an exact corner the x step comes first), so the walk is
// 4-connected and cannot slip through an 8-connected membrane line. Along the walk:
//   - inside the cell's own territory, the first membrane pixel is a hit;
//   - after the walk leaves the territory (a neighbour's territory or unassigned pixels), a membrane
//     pixel entered less than `outside_reach` after the exit still counts (0: only the cell's own
//     membrane counts); further out the ray is not covered;
//   - radius cap: when the walk leaves the territory at a pixel whose centre lies farther than
//     cap_radius - 1.5 from the cell centre (the territory was cut by the radius limit of the
//     watershed, not by a neighbour or by membrane), membrane entered before t = cap_radius +
//     cap_reach counts too (any label; its run is followed over any label): a cell larger than the
//     cap still finds its membrane. Geometry alone decides (not the labels beyond, which depend on
//     farther cells; the limit is measured from the centre, not from the exit), so the result does not
//     depend on the tile grid (cap_radius = +inf: off);
//   - from a hit the walk follows the membrane run (consecutive membrane pixels of the territory
//     where it was hit) for at most `max_run`: run_length[k, r] = t(leave run) - t(enter run) > 0
//     (at least 1e-3: a run through a pixel corner) and peak_od[k, r] = the largest `dab_od` over it;
//   - the walk stops at the image border, at t > max_length, or when the run ends.
// Uncovered rays get run_length = 0 and peak_od = 0. The centre is an integer base pixel plus a
// fraction in [0, 1) (pixel (y, x) is centred at (x, y)), so the walk is bit-identical wherever a
// tile starts.
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// `labels` (h x w int32, territory k + 1 for cell k), `membrane` (h x w uint8, nonzero = membrane),
/// `dab_od` (h x w float); `centre_base` (n_cells x 2 int32: x, y) and `centre_frac` (n_cells x 2,
/// in [0, 1)); `cap_radius` (>= 0 or +inf) and `cap_reach` (>= 0) in pixels; outputs `run_length` and `peak_od`
/// (n_cells x n_rays float32). `cell_labels` (n_cells int32, optional): the territory label of cell k (default k + 1),
/// so that a subset of the cells can be measured. Throws std::invalid_argument on bad arguments.
void membrane_rays(const std::int32_t* labels, const std::uint8_t* membrane, const float* dab_od, std::ptrdiff_t h,
                   std::ptrdiff_t w, std::int32_t n_cells, const std::int32_t* centre_base, const double* centre_frac,
                   int n_rays, double max_length, double outside_reach, double max_run, double cap_radius,
                   double cap_reach, float* run_length, float* peak_od, const std::int32_t* cell_labels = nullptr);

// own_side_gate: the own-side gated membrane OD of covered rays (her2fast.cells, `far_side_weight`).
// For ray r of cell k (direction (dir_x[r], dir_y[r]) from the centre), with profile samples every
// `step` px (bilinear `dab_od`, coordinates clamped to the image, j * step from the centre):
//   - first = the first sample (0 <= j, j * step < max_length) whose nearest pixel is membrane of the
//     cell's own territory (`cell_labels[k]`); none: the ray gets +inf (not measured);
//   - runs = round(run_length[k, r] / step); the peak = the largest profile value (the last one on a
//     plateau) over [first, first + runs + run_extra]; the ridge = the largest over
//     [first - n05, first + runs + n15];
//   - inner / outer = the mean profile over samples n05..n15 before / after the ridge (only j >= 0);
//   - gate = clip((inner - far_weight * outer) / max((1 - far_weight) * inner, 1e-6), 0, 1);
//   - gated[k, r] = peak * gate; rays with covered[k, r] == 0 get +inf.
// Sample windows are bounded by the widest ray of the call (as the NumPy reference in the tests).
void own_side_gate(const std::int32_t* labels, const std::uint8_t* membrane, const float* dab_od, std::ptrdiff_t h,
                   std::ptrdiff_t w, std::int32_t n_cells, const std::int32_t* cell_labels,
                   const std::int32_t* centre_base, const double* centre_frac, const std::uint8_t* covered,
                   const float* run_length, int n_rays, const double* dir_x, const double* dir_y, double max_length,
                   double step, int n05, int n15, int run_extra, double far_weight, double* gated);

}  // namespace her2fast
