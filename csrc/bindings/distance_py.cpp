#include "../distance.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
py::array_t<float> distance_transform_edt_py(const py::array& mask) {
  require_array<std::uint8_t>(mask, "mask", 2);
  const auto h = static_cast<std::ptrdiff_t>(mask.shape(0)), w = static_cast<std::ptrdiff_t>(mask.shape(1));
  py::array_t<float> out({h, w});
  const std::uint8_t* m = static_cast<const std::uint8_t*>(mask.data());
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    distance_transform_edt(m, h, w, dst);
  }
  return out;
}
}  // namespace

void register_distance(py::module_& m) {
  m.def("distance_transform_edt", &distance_transform_edt_py, py::arg("mask"),
        "Exact Euclidean distance of each nonzero pixel to the nearest zero pixel -> float32 (== scipy's, cast).");
}

}  // namespace her2fast::py_bindings
