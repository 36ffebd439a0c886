// Per-superpixel features for the epithelium/stroma classifier, computed in one pass over a tile.
//
// For each superpixel k (labels 0..K-1; label -1 = ignored pixel) the feature row is
//   [ colour histogram (224 bins) | uniform-LBP histogram (P+2 bins) | pixel count ]
// Colour histogram: seven 32-bin marginal histograms, each normalised to sum 1 over the superpixel:
//   R>>3, G>>3, B>>3                       (red, green, blue)
//   hue, saturation, value of HSV          (integer quantisation, exact, below)
//   grey>>3                                (grey = (54 R + 183 G + 19 B + 128) >> 8, Rec. 709 luma)
//   with mx = max(R,G,B), mn = min(R,G,B), d = mx - mn:
//   hue bin  = d == 0 ? 0 : floor(32 * h6 / (6 d)),  h6 = (G - B) mod 6d if mx == R,
//              2d + (B - R) if mx == G (and not R), 4d + (R - G) otherwise; 0 <= h6 < 6d
//   sat bin  = floor(32 * d / (mx + 1))
//   value bin = mx >> 3
// LBP histogram: uniform LBP codes (lbp.hpp, riu2, P neighbours at radius R) of the grey image,
// P+2 bins normalised to sum 1. Pixel count: number of pixels of the superpixel (not normalised).
// A superpixel with no pixels gets a row of zeros.
#pragma once

#include <cstddef>
#include <cstdint>

namespace her2fast {

constexpr int kColourBins = 224;  // 7 channels x 32 bins
constexpr int kColourChannelBins = 32;

/// Number of features per superpixel for P LBP neighbours: 224 + (P + 2) + 1.
constexpr int superpixel_feature_count(int P) { return kColourBins + P + 2 + 1; }

/// Grey level used for the LBP texture: (54 R + 183 G + 19 B + 128) >> 8.
inline std::uint8_t grey_level(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  return static_cast<std::uint8_t>((54u * r + 183u * g + 19u * b + 128u) >> 8);
}

/// Colour bins of one pixel: out[0..6] in 0..31 for R, G, B, hue, saturation, value, grey.
void colour_bins(std::uint8_t r, std::uint8_t g, std::uint8_t b, std::uint8_t out[7]);

/// Fills `features` (n_labels rows of superpixel_feature_count(P) doubles, contiguous) from an RGB
/// tile (h rows of w interleaved RGB pixels, rows `row_stride` bytes apart) and its labels (h x w
/// int32, rows `label_stride` elements apart; -1 = ignore). Throws std::invalid_argument on bad
/// arguments or a label outside -1..n_labels-1.
void superpixel_features(const std::uint8_t* rgb, std::ptrdiff_t h, std::ptrdiff_t w, std::ptrdiff_t row_stride,
                         const std::int32_t* labels, std::ptrdiff_t label_stride, std::int32_t n_labels, int P,
                         double R, double* features);

}  // namespace her2fast
