#include "../nucleus_seeds.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
py::tuple component_distance_maxima_py(const py::array& labels, const py::array& keep, double height) {
  require_array<std::int32_t>(labels, "labels", 2);
  require_array<std::uint8_t>(keep, "keep", 1);
  const auto h = static_cast<py::ssize_t>(labels.shape(0)), w = static_cast<py::ssize_t>(labels.shape(1));
  const auto n_labels = static_cast<std::int32_t>(keep.shape(0) - 1);
  py::array_t<float> dist({h, w});
  py::array_t<std::uint8_t> peaks({h, w});
  const auto* lab = static_cast<const std::int32_t*>(labels.data());
  const auto* k = static_cast<const std::uint8_t*>(keep.data());
  float* d = dist.mutable_data();
  std::uint8_t* p = peaks.mutable_data();
  {
    py::gil_scoped_release release;
    component_distance_maxima(lab, h, w, k, n_labels, height, d, p);
  }
  return py::make_tuple(dist, peaks);
}
}  // namespace

void register_nucleus_seeds(py::module_& m) {
  m.def("component_distance_maxima", &component_distance_maxima_py, py::arg("labels"), py::arg("keep"),
        py::arg("height"),
        "Distance map and h-maxima (height < 1) of the kept components (keep: uint8 per label 0..n), one component "
        "box at a time -> (float32 dist, uint8 peaks); equal to the whole-image computation (nucleus_seeds.hpp).");
}

}  // namespace her2fast::py_bindings
