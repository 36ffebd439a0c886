#include "../reconstruct.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
py::array_t<float> reconstruct_dilation_py(const py::array& marker, const py::array& mask) {
  require_array<float>(marker, "marker", 2);
  require_array<float>(mask, "mask", 2);
  const auto h = static_cast<std::ptrdiff_t>(marker.shape(0)), w = static_cast<std::ptrdiff_t>(marker.shape(1));
  if (mask.shape(0) != h || mask.shape(1) != w) throw py::value_error("mask must have the shape of marker");
  py::array_t<float> out({h, w});
  const float* mk = static_cast<const float*>(marker.data());
  const float* ms = static_cast<const float*>(mask.data());
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    reconstruct_dilation(mk, ms, h, w, dst);
  }
  return out;
}
py::array_t<std::uint8_t> h_maxima_py(const py::array& image, double height) {
  require_array<float>(image, "image", 2);
  const auto h = static_cast<std::ptrdiff_t>(image.shape(0)), w = static_cast<std::ptrdiff_t>(image.shape(1));
  py::array_t<std::uint8_t> out({h, w});
  const float* src = static_cast<const float*>(image.data());
  std::uint8_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    h_maxima(src, h, w, height, dst);
  }
  return out;
}
}  // namespace

void register_reconstruct(py::module_& m) {
  m.def("h_maxima", &h_maxima_py, py::arg("image"), py::arg("height"),
        "Regional maxima of height >= height (8-connected) -> uint8 0/1 (scikit-image's float path; see "
        "reconstruct.hpp).");
  m.def("reconstruct_dilation", &reconstruct_dilation_py, py::arg("marker"), py::arg("mask"),
        "Grey reconstruction by dilation (8-connected) of marker under mask -> float32 (== skimage's).");
}

}  // namespace her2fast::py_bindings
