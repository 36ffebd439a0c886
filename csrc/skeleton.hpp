// Membrane skeletons and the regions they enclose.
//
// thin_guo_hall: the parallel thinning of Z. Guo and R. W. Hall, "Parallel thinning with
// two-subiteration algorithms", Communications of the ACM 32(3), 359-373, 1989 (algorithm A1),
// the algorithm behind scikit-image's `skimage.morphology.thin`, whose result it equals pixel for
// pixel. With the 8 neighbours x1..x8 counter-clockwise from east (x1 = E, x2 = NE, x3 = N, ...,
// x8 = SE) and pixels outside the image read as 0, a foreground pixel is deleted in a subiteration
// when
//   G1: X_H = 1, X_H = #{i in 1..4 : x_{2i-1} = 0 and (x_{2i} = 1 or x_{2i+1} = 1)} (x9 = x1);
//   G2: 2 <= min(N1, N2) <= 3, N1 = sum_k (x_{2k-1} or x_{2k}), N2 = sum_k (x_{2k} or x_{2k+1});
//   G3 (odd subiterations): (x2 or x3 or not x8) and x1 = 0;
//   G3' (even subiterations): (x6 or x7 or not x4) and x5 = 0;
// all deletions of a subiteration decided on the image as it was when the subiteration began.
// Iterations (two subiterations each) repeat until one deletes nothing, or max_iter is reached.
// The result is 8-connected, one pixel wide and keeps the topology (components and holes).
//
// enclosed_regions: the 4-connected components of the background of a skeleton (the pixels not on
// it), each with its area and whether it touches the image border. A component that does not
// touch the border is enclosed by the skeleton: a closed membrane loop around it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace her2fast {

/// Thins the binary image `mask` (h x w bytes, nonzero = foreground, rows `stride` bytes apart)
/// into `out` (h x w, contiguous, 0/1). max_iter < 0: until convergence. Returns the number of
/// iterations run. Throws std::invalid_argument on bad arguments.
int thin_guo_hall(const std::uint8_t* mask, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride,
                  std::uint8_t* out, int max_iter = -1);

/// Background regions of a skeleton (see above).
struct RegionTable {
  std::vector<std::int64_t> area;            // pixels per region
  std::vector<std::uint8_t> touches_border;  // 1: reaches the image border (not enclosed)
};

/// Labels the 4-connected components of the pixels where `skeleton` (h x w, rows `stride` bytes
/// apart) is zero: `labels` (h x w, contiguous) gets 0..n-1 in raster order of first pixel, -1 on
/// the skeleton. Returns the table of the n regions.
RegionTable enclosed_regions(const std::uint8_t* skeleton, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride,
                             std::int32_t* labels);

}  // namespace her2fast
