#include "reconstruct.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace her2fast {

void reconstruct_dilation(const float* marker, const float* mask, std::ptrdiff_t h, std::ptrdiff_t w, float* out) {
  if (h <= 0 || w <= 0)
    throw std::invalid_argument("reconstruct_dilation: empty image " + std::to_string(h) + "x" + std::to_string(w));
  const std::ptrdiff_t n = h * w;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    if (!std::isfinite(marker[i]) || !std::isfinite(mask[i]))
      throw std::invalid_argument("reconstruct_dilation: non-finite value at pixel " + std::to_string(i));
    if (marker[i] > mask[i])
      throw std::invalid_argument("reconstruct_dilation: marker > mask at pixel " + std::to_string(i) +
                                  " (the marker must lie under the mask)");
  }
  float* J = out;
  if (J != marker) std::copy(marker, marker + n, J);
  const float* I = mask;

  // Raster sweep: causal neighbours (y-1, x-1..x+1) and (y, x-1).
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    float* row = J + y * w;
    const float* up = y > 0 ? row - w : nullptr;
    const float* irow = I + y * w;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      float m = row[x];
      if (x > 0) m = std::max(m, row[x - 1]);
      if (up) {
        m = std::max(m, up[x]);
        if (x > 0) m = std::max(m, up[x - 1]);
        if (x + 1 < w) m = std::max(m, up[x + 1]);
      }
      row[x] = std::min(m, irow[x]);
    }
  }
  // Anti-raster sweep: anti-causal neighbours (y+1, x-1..x+1) and (y, x+1); queue pixels whose
  // anti-causal neighbour can still grow from them.
  std::vector<std::int64_t> fifo;
  fifo.reserve(static_cast<std::size_t>(std::min<std::ptrdiff_t>(n, 1 << 16)));
  for (std::ptrdiff_t y = h - 1; y >= 0; --y) {
    float* row = J + y * w;
    float* dn = y + 1 < h ? row + w : nullptr;
    const float* irow = I + y * w;
    const float* idn = y + 1 < h ? irow + w : nullptr;
    for (std::ptrdiff_t x = w - 1; x >= 0; --x) {
      float m = row[x];
      if (x + 1 < w) m = std::max(m, row[x + 1]);
      if (dn) {
        m = std::max(m, dn[x]);
        if (x > 0) m = std::max(m, dn[x - 1]);
        if (x + 1 < w) m = std::max(m, dn[x + 1]);
      }
      const float v = std::min(m, irow[x]);
      row[x] = v;
      bool push = x + 1 < w && row[x + 1] < v && row[x + 1] < irow[x + 1];
      if (!push && dn) {
        for (std::ptrdiff_t dx = -1; dx <= 1 && !push; ++dx) {
          const std::ptrdiff_t xx = x + dx;
          if (xx >= 0 && xx < w && dn[xx] < v && dn[xx] < idn[xx]) push = true;
        }
      }
      if (push) fifo.push_back(y * w + x);
    }
  }
  // Propagation.
  for (std::size_t head = 0; head < fifo.size(); ++head) {
    const std::int64_t p = fifo[head];
    const std::ptrdiff_t y = p / w, x = p % w;
    const float v = J[p];
    for (std::ptrdiff_t dy = -1; dy <= 1; ++dy) {
      const std::ptrdiff_t yy = y + dy;
      if (yy < 0 || yy >= h) continue;
      for (std::ptrdiff_t dx = -1; dx <= 1; ++dx) {
        const std::ptrdiff_t xx = x + dx;
        if ((dx == 0 && dy == 0) || xx < 0 || xx >= w) continue;
        const std::ptrdiff_t q = yy * w + xx;
        if (J[q] < v && I[q] != J[q]) {
          J[q] = std::min(v, I[q]);
          fifo.push_back(q);
        }
      }
    }
    if (head > (1u << 20) && head * 2 > fifo.size()) {  // keep the queue's memory bounded
      fifo.erase(fifo.begin(), fifo.begin() + static_cast<std::ptrdiff_t>(head) + 1);
      head = static_cast<std::size_t>(-1);
    }
  }
}

void h_maxima(const float* image, std::ptrdiff_t h, std::ptrdiff_t w, double height, std::uint8_t* out) {
  if (image == nullptr || out == nullptr) throw std::invalid_argument("h_maxima: null pointer");
  if (h <= 0 || w <= 0)
    throw std::invalid_argument("h_maxima: empty image " + std::to_string(h) + "x" + std::to_string(w));
  if (!(height > 0.0) || !std::isfinite(height))
    throw std::invalid_argument("h_maxima: height must be finite and > 0, got " + std::to_string(height));
  const std::ptrdiff_t n = h * w;
  float lo = image[0], hi = image[0];
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float v = image[i];
    if (!std::isfinite(v)) throw std::invalid_argument("h_maxima: non-finite value at pixel " + std::to_string(i));
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (height > static_cast<double>(hi - lo)) {
    std::fill(out, out + n, std::uint8_t{0});
    return;
  }
  thread_local std::vector<float> rec;  // per-thread scratch, reused across tiles
  rec.resize(static_cast<std::size_t>(n));
  const float hf = static_cast<float>(height);
  const float resolution = 2.0f * static_cast<float>(1e-6);  // 2 * np.finfo(np.float32).resolution
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const float v = image[i];
    const float shift = resolution * std::fabs(v);
    rec[static_cast<std::size_t>(i)] = (v - hf) - shift;
  }
  reconstruct_dilation(rec.data(), image, h, w, rec.data());
  for (std::ptrdiff_t i = 0; i < n; ++i)
    out[i] = static_cast<double>(image[i]) - static_cast<double>(rec[static_cast<std::size_t>(i)]) >= height ? 1 : 0;
  if (rec.capacity() > (std::size_t{8} << 20)) std::vector<float>().swap(rec);
}

}  // namespace her2fast
