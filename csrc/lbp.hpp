// Uniform local binary patterns: rotation-invariant "riu2" codes of Ojala, Pietikainen & Maenpaa,
// "Multiresolution gray-scale and rotation invariant texture classification with local binary
// patterns", IEEE TPAMI 24(7), 2002.
//
// Variant and sampling are exactly those of scikit-image's
// `skimage.feature.local_binary_pattern(image, P, R, method="uniform")`, so results are equal:
//  - neighbour i (0 <= i < P) sits at row offset round(-R sin(2 pi i / P), 5) and column offset
//    round(R cos(2 pi i / P), 5) (rounded to 5 decimals as numpy.round does);
//  - off-grid neighbours are bilinear interpolations in double precision, evaluated in the same
//    order as scikit-image ((1-dc)*tl + dc*tr, then (1-dr)*top + dr*bottom);
//  - pixels outside the image read as 0 (zero padding);
//  - bit i is set when neighbour_i - centre >= 0;
//  - the pattern is uniform when it has at most two 0/1 changes between consecutive neighbours
//    i and i+1 (i < P-1); a uniform pattern's code is its number of set bits (0..P), every other
//    pattern gets code P+1.
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

/// Largest number of neighbours accepted (codes must fit in uint8).
constexpr int kLbpMaxPoints = 64;

/// Uniform LBP of a grey uint8 image.
/// `img` has `h` rows of `w` pixels, rows `stride` elements apart; `out` receives h x w codes
/// (0..P+1), rows `out_stride` elements apart. Throws std::invalid_argument on bad arguments
/// (h or w < 1, stride < w, P outside 1..kLbpMaxPoints, R not finite or <= 0, null pointers).
void lbp_uniform(const std::uint8_t* img, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride, int P, double R,
                 std::uint8_t* out, std::ptrdiff_t out_stride);

/// Same on a float64 image (scikit-image converts every input to float64 first).
void lbp_uniform(const double* img, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t stride, int P, double R,
                 std::uint8_t* out, std::ptrdiff_t out_stride);

}  // namespace her2fast
