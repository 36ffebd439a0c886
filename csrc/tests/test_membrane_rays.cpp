#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "membrane_rays.hpp"

using her2fast::membrane_rays;

namespace {
constexpr double kOff = std::numeric_limits<double>::infinity();  // no radius cap
// A one-pixel-wide 8-connected ring (radius ~r) around (c, c), territory = its inside + the ring.
struct Ring {
  int n;
  std::vector<std::uint8_t> membrane;
  std::vector<std::int32_t> labels;
  std::vector<float> od;
  Ring(int size, double r, double gap_from_deg = 0, double gap_to_deg = 0) : n(size) {
    membrane.assign(n * n, 0);
    labels.assign(n * n, 0);
    od.assign(n * n, 0.0f);
    const double c = n / 2;
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        const double d = std::hypot(x - c, y - c);
        double a = std::atan2(y - c, x - c) * 180.0 / 3.14159265358979;
        if (a < 0) a += 360.0;
        const bool in_gap = a >= gap_from_deg && a < gap_to_deg;
        if (d <= r + 0.5) labels[y * n + x] = 1;
        if (std::fabs(d - r) <= 0.75 && !in_gap) {
          membrane[y * n + x] = 1;
          od[y * n + x] = 1.5f;
        }
      }
  }
};
}  // namespace

TEST_CASE("membrane_rays: every ray of a closed thin ring is covered, with the ring's OD") {
  Ring ring(41, 12.0);
  std::vector<std::int32_t> base = {20, 20};
  std::vector<double> frac = {0.0, 0.0};
  const int nr = 72;
  std::vector<float> run(nr), peak(nr);
  membrane_rays(ring.labels.data(), ring.membrane.data(), ring.od.data(), 41, 41, 1, base.data(), frac.data(), nr, 20.0,
                1.0, 5.0, kOff, 0.0, run.data(), peak.data());
  for (int r = 0; r < nr; ++r) {
    CHECK(run[r] > 0.0f);
    CHECK(run[r] < 4.0f);
    CHECK(peak[r] == doctest::Approx(1.5));
  }
}

TEST_CASE("membrane_rays: a ring with a quarter gap covers three quarters of the rays") {
  Ring ring(41, 12.0, 0.0, 90.0);
  std::vector<std::int32_t> base = {20, 20};
  std::vector<double> frac = {0.0, 0.0};
  const int nr = 72;
  std::vector<float> run(nr), peak(nr);
  membrane_rays(ring.labels.data(), ring.membrane.data(), ring.od.data(), 41, 41, 1, base.data(), frac.data(), nr, 20.0,
                1.0, 5.0, kOff, 0.0, run.data(), peak.data());
  int covered = 0;
  for (int r = 0; r < nr; ++r) covered += run[r] > 0.0f;
  CHECK(covered >= 52);
  CHECK(covered <= 56);
}

TEST_CASE("membrane_rays: membrane beyond the territory counts only within outside_reach") {
  // Territory: columns x <= 10; a membrane column at x = 12 (one pixel of a neighbour in between).
  const int h = 41, w = 30;
  std::vector<std::int32_t> labels(h * w, 0);
  std::vector<std::uint8_t> membrane(h * w, 0);
  std::vector<float> od(h * w, 0.0f);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x <= 10; ++x) labels[y * w + x] = 1;
    labels[y * w + 11] = 2;
    membrane[y * w + 12] = 1;
    od[y * w + 12] = 0.7f;
  }
  std::vector<std::int32_t> base = {2, 20};
  std::vector<double> frac = {0.0, 0.0};
  const int nr = 72;  // ray 0 and ray 71 are +-2.5 degrees from the x axis
  std::vector<float> run(nr), peak(nr);
  membrane_rays(labels.data(), membrane.data(), od.data(), h, w, 1, base.data(), frac.data(), nr, 30.0, 2.0, 5.0, kOff,
                0.0, run.data(), peak.data());
  CHECK(run[0] > 0.0f);
  CHECK(run[nr - 1] > 0.0f);
  CHECK(peak[0] == doctest::Approx(0.7));
  CHECK(run[nr / 2] == 0.0f);  // pointing left: leaves the image without membrane
  membrane_rays(labels.data(), membrane.data(), od.data(), h, w, 1, base.data(), frac.data(), nr, 30.0, 0.5, 5.0, kOff,
                0.0, run.data(), peak.data());
  CHECK(run[0] == 0.0f);  // the membrane is 1 px beyond the exit: out of reach
}

TEST_CASE("membrane_rays: past the radius cap, membrane within cap_reach counts (whatever the label beyond)") {
  // Territory: the disc of radius 10 (the watershed's radius cap); membrane ring at radius 14 outside it.
  const int n = 41;
  const double c = 20.0;
  std::vector<std::int32_t> labels(n * n, 0), neighbour(n * n, 0);
  std::vector<std::uint8_t> membrane(n * n, 0);
  std::vector<float> od(n * n, 0.0f);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const double d = std::hypot(x - c, y - c);
      labels[y * n + x] = d <= 10.0 ? 1 : 0;
      neighbour[y * n + x] = d <= 10.0 ? 1 : 2;
      if (std::fabs(d - 14.0) <= 0.75) {
        membrane[y * n + x] = 1;
        od[y * n + x] = 0.9f;
      }
    }
  std::vector<std::int32_t> base = {20, 20};
  std::vector<double> frac = {0.0, 0.0};
  const int nr = 36;
  std::vector<float> run(nr), peak(nr);
  auto covered = [&](const std::vector<std::int32_t>& lab, double cap_radius, double cap_reach) {
    membrane_rays(lab.data(), membrane.data(), od.data(), n, n, 1, base.data(), frac.data(), nr, 30.0, 0.0, 5.0,
                  cap_radius, cap_reach, run.data(), peak.data());
    int k = 0;
    for (int r = 0; r < nr; ++r) k += run[r] > 0.0f;
    return k;
  };
  CHECK(covered(labels, kOff, 0.0) == 0);   // no cap rule: own membrane only
  CHECK(covered(labels, 10.0, 6.0) == nr);  // the ring lies 3-4.5 px beyond the cap
  CHECK(peak[0] == doctest::Approx(0.9));
  CHECK(covered(labels, 10.0, 2.0) == 0);      // out of reach (12 px from the centre)
  CHECK(covered(labels, 16.0, 6.0) == 0);      // the territory ended before the cap: not a cap exit
  CHECK(covered(neighbour, 10.0, 6.0) == nr);  // the label beyond the cap does not matter
  CHECK(covered(neighbour, 13.0, 6.0) == 0);   // ended at a neighbour 10-11.4 px out, inside the cap
}

TEST_CASE("membrane_rays: invalid arguments throw") {
  std::vector<std::int32_t> labels(4, 1), base = {0, 0};
  std::vector<std::uint8_t> membrane(4, 0);
  std::vector<float> od(4, 0.0f), run(1), peak(1);
  std::vector<double> frac = {0.0, 0.0};
  CHECK_THROWS_AS(membrane_rays(labels.data(), membrane.data(), od.data(), 2, 2, 1, base.data(), frac.data(), 0, 5.0,
                                1.0, 1.0, kOff, 0.0, run.data(), peak.data()),
                  std::invalid_argument);
  CHECK_THROWS_AS(membrane_rays(labels.data(), membrane.data(), od.data(), 2, 2, 1, base.data(), frac.data(), 1, 5.0,
                                1.0, 1.0, -1.0, 0.0, run.data(), peak.data()),
                  std::invalid_argument);
  CHECK_THROWS_AS(membrane_rays(labels.data(), membrane.data(), od.data(), 2, 2, 1, base.data(), frac.data(), 1, 5.0,
                                1.0, 1.0, 3.0, -1.0, run.data(), peak.data()),
                  std::invalid_argument);
  frac[0] = 1.0;
  CHECK_THROWS_AS(membrane_rays(labels.data(), membrane.data(), od.data(), 2, 2, 1, base.data(), frac.data(), 1, 5.0,
                                1.0, 1.0, kOff, 0.0, run.data(), peak.data()),
                  std::invalid_argument);
}

namespace {
// A ring of OD 1.5 with extra stain 0.6 on one side of it (inside: the cell's own; outside: a neighbour's).
std::vector<double> gate_of_ring(bool stain_inside) {
  Ring ring(61, 12.0);
  const double c = 30.0;
  for (int y = 0; y < 61; ++y)
    for (int x = 0; x < 61; ++x) {
      const double d = std::hypot(x - c, y - c);
      const bool side = stain_inside ? (d >= 12.0 - 4.0 && d <= 12.0 - 1.0) : (d >= 12.0 + 1.0 && d <= 12.0 + 4.0);
      if (side) ring.od[y * 61 + x] = 0.6f;
    }
  std::vector<std::int32_t> base = {30, 30}, cell_labels = {1};
  std::vector<double> frac = {0.0, 0.0};
  const int nr = 16;
  std::vector<float> run(nr), peak(nr);
  membrane_rays(ring.labels.data(), ring.membrane.data(), ring.od.data(), 61, 61, 1, base.data(), frac.data(), nr, 20.0,
                1.0, 5.0, kOff, 0.0, run.data(), peak.data());
  std::vector<std::uint8_t> covered(nr);
  std::vector<double> dx(nr), dy(nr), gated(nr);
  for (int r = 0; r < nr; ++r) {
    covered[r] = r % 4 != 3;  // every fourth ray uncovered: +inf
    const double a = 2.0 * 3.141592653589793 * (r + 0.5) / nr;
    dx[r] = std::cos(a);
    dy[r] = std::sin(a);
  }
  her2fast::own_side_gate(ring.labels.data(), ring.membrane.data(), ring.od.data(), 61, 61, 1, cell_labels.data(),
                          base.data(), frac.data(), covered.data(), run.data(), nr, dx.data(), dy.data(), 22.0, 0.25, 4,
                          12, 4, 0.9, gated.data());
  return gated;
}
}  // namespace

TEST_CASE("own_side_gate: own-side stain keeps the ring's peak, a neighbour's side gives 0, uncovered is +inf") {
  const auto own = gate_of_ring(true), far = gate_of_ring(false);
  for (int r = 0; r < 16; ++r) {
    if (r % 4 == 3) {
      CHECK(std::isinf(own[r]));
      CHECK(std::isinf(far[r]));
      continue;
    }
    CHECK(own[r] == doctest::Approx(1.5).epsilon(0.01));
    CHECK(far[r] == 0.0);
  }
}

TEST_CASE("own_side_gate: invalid arguments throw") {
  std::vector<std::int32_t> lab(9, 1), cl = {1}, base = {1, 1};
  std::vector<std::uint8_t> mem(9, 1), cov = {1};
  std::vector<float> od(9, 1.0f), run = {1.0f};
  std::vector<double> frac = {0.0, 0.0}, dx = {1.0}, dy = {0.0}, out(1);
  auto call = [&](double step, int n05, int n15, double fw) {
    her2fast::own_side_gate(lab.data(), mem.data(), od.data(), 3, 3, 1, cl.data(), base.data(), frac.data(), cov.data(),
                            run.data(), 1, dx.data(), dy.data(), 2.0, step, n05, n15, 4, fw, out.data());
  };
  CHECK_NOTHROW(call(0.25, 1, 2, 0.9));
  CHECK_THROWS_AS(call(0.0, 1, 2, 0.9), std::invalid_argument);
  CHECK_THROWS_AS(call(0.25, 3, 2, 0.9), std::invalid_argument);
  CHECK_THROWS_AS(call(0.25, 1, 2, 1.0), std::invalid_argument);
}
