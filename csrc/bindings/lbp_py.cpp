#include "../lbp.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
template <typename T>
py::array_t<std::uint8_t> lbp_uniform_py(const py::array& image, int P, double R) {
  require_array<T>(image, "image", 2);
  const auto h = static_cast<std::ptrdiff_t>(image.shape(0)), w = static_cast<std::ptrdiff_t>(image.shape(1));
  py::array_t<std::uint8_t> out({h, w});
  const T* src = static_cast<const T*>(image.data());
  std::uint8_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    lbp_uniform(src, h, w, w, P, R, dst, w);
  }
  return out;
}
}  // namespace

void register_lbp(py::module_& m) {
  m.def("lbp_uniform_u8", &lbp_uniform_py<std::uint8_t>, py::arg("image"), py::arg("P"), py::arg("R"),
        "Uniform (riu2) LBP codes of a C-contiguous 2-D uint8 image -> uint8 codes 0..P+1.");
  m.def("lbp_uniform_f64", &lbp_uniform_py<double>, py::arg("image"), py::arg("P"), py::arg("R"),
        "Uniform (riu2) LBP codes of a C-contiguous 2-D float64 image -> uint8 codes 0..P+1.");
  m.attr("LBP_MAX_POINTS") = kLbpMaxPoints;
}

}  // namespace her2fast::py_bindings
