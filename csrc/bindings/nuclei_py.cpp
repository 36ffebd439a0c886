#include "../nuclei.hpp"

#include <tuple>
#include <utility>

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
// An optional odd-sided square uint8 structure -> (pointer, side).
// `keep` holds the array while the kernel runs.
std::pair<const std::uint8_t*, std::ptrdiff_t> structure_arg(const py::object& obj, const char* name, py::array& keep) {
  if (obj.is_none()) return {nullptr, 0};
  keep = obj.cast<py::array>();
  require_array<std::uint8_t>(keep, name, 2);
  if (keep.shape(0) != keep.shape(1) || keep.shape(0) % 2 == 0)
    throw py::value_error(std::string(name) + " must be square with an odd side");
  return {static_cast<const std::uint8_t*>(keep.data()), static_cast<std::ptrdiff_t>(keep.shape(0))};
}

py::tuple segment_nuclei_py(const py::array& hem, const py::object& mask, const py::object& smooth_weights,
                            float threshold, const py::object& opening, double min_px, double depth,
                            const py::object& seed_disk) {
  require_array<float>(hem, "hem", 2);
  const auto h = static_cast<py::ssize_t>(hem.shape(0)), w = static_cast<py::ssize_t>(hem.shape(1));
  py::array mask_a, weights_a, opening_a, seed_a;
  const std::uint8_t* m = nullptr;
  if (!mask.is_none()) {
    mask_a = mask.cast<py::array>();
    require_array<std::uint8_t>(mask_a, "mask", 2);
    if (mask_a.shape(0) != h || mask_a.shape(1) != w) throw py::value_error("mask must have the shape of hem");
    m = static_cast<const std::uint8_t*>(mask_a.data());
  }
  NucleiParams p;
  if (!smooth_weights.is_none()) {
    weights_a = smooth_weights.cast<py::array>();
    require_array<double>(weights_a, "smooth_weights", 1);
    if (weights_a.shape(0) % 2 == 0) throw py::value_error("smooth_weights must have an odd length");
    p.smooth_weights = static_cast<const double*>(weights_a.data());
    p.smooth_radius = static_cast<int>(weights_a.shape(0) / 2);
  }
  p.threshold = threshold;
  std::tie(p.opening, p.opening_side) = structure_arg(opening, "opening", opening_a);
  std::tie(p.seed_disk, p.seed_side) = structure_arg(seed_disk, "seed_disk", seed_a);
  p.min_px = min_px;
  p.depth = depth;
  py::array_t<std::int32_t> labels({h, w});
  const auto* src = static_cast<const float*>(hem.data());
  std::int32_t* dst = labels.mutable_data();
  std::int32_t n = 0;
  {
    py::gil_scoped_release release;
    n = segment_nuclei(src, h, w, m, p, dst);
  }
  return py::make_tuple(labels, n);
}

py::array_t<float> gaussian_smooth_py(const py::array& image, const py::array& weights) {
  require_array<float>(image, "image", 2);
  require_array<double>(weights, "weights", 1);
  if (weights.shape(0) % 2 == 0) throw py::value_error("weights must have an odd length");
  const auto h = static_cast<py::ssize_t>(image.shape(0)), w = static_cast<py::ssize_t>(image.shape(1));
  py::array_t<float> out({h, w});
  const auto* src = static_cast<const float*>(image.data());
  const auto* wt = static_cast<const double*>(weights.data());
  const int r = static_cast<int>(weights.shape(0) / 2);
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    gaussian_smooth(src, h, w, wt, r, dst);
  }
  return out;
}
py::array_t<bool> binary_morphology_py(const py::array& mask, const py::array& structure, bool erode) {
  require_array<std::uint8_t>(mask, "mask", 2);
  require_array<std::uint8_t>(structure, "structure", 2);
  if (structure.shape(0) % 2 == 0 || structure.shape(1) % 2 == 0)
    throw py::value_error("structure must have odd sides");
  const auto h = static_cast<py::ssize_t>(mask.shape(0)), w = static_cast<py::ssize_t>(mask.shape(1));
  py::array_t<bool> out({h, w});
  const auto* src = static_cast<const std::uint8_t*>(mask.data());
  const auto* st = static_cast<const std::uint8_t*>(structure.data());
  const auto sh = static_cast<std::ptrdiff_t>(structure.shape(0)), sw = static_cast<std::ptrdiff_t>(structure.shape(1));
  auto* dst = reinterpret_cast<std::uint8_t*>(out.mutable_data());
  {
    py::gil_scoped_release release;
    shift_reduce(src, h, w, st, sh, sw, erode, dst);
  }
  return out;
}
}  // namespace

void register_nuclei(py::module_& m) {
  m.def("segment_nuclei", &segment_nuclei_py, py::arg("hem"), py::arg("mask"), py::arg("smooth_weights"),
        py::arg("threshold"), py::arg("opening"), py::arg("min_px"), py::arg("depth"), py::arg("seed_disk"),
        "The nucleus label map of a float32 hematoxylin map in one pass (nuclei.hpp) -> (int32 labels, n); n = -1: "
        "the kept components cover the whole image (use the whole-image path).");
  m.def("gaussian_smooth", &gaussian_smooth_py, py::arg("image"), py::arg("weights"),
        "scipy.ndimage.gaussian_filter(float32, mode='nearest') with the given symmetric 1-D weights -> float32.");
  m.def(
      "binary_morphology", &binary_morphology_py, py::arg("mask"), py::arg("structure"), py::arg("erode"),
      "AND (erode) or OR of a uint8 mask shifted by every offset of a structure whose rows are single runs, outside = "
      "0 -> bool (binary_erosion; binary_dilation with the structure reflected).");
}

}  // namespace her2fast::py_bindings
