#include "../skeleton.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
py::tuple thin_py(const py::array& mask, int max_iter) {
  require_array<std::uint8_t>(mask, "mask", 2);
  const auto h = static_cast<std::ptrdiff_t>(mask.shape(0)), w = static_cast<std::ptrdiff_t>(mask.shape(1));
  py::array_t<std::uint8_t> out({h, w});
  const std::uint8_t* src = static_cast<const std::uint8_t*>(mask.data());
  std::uint8_t* dst = out.mutable_data();
  int iterations;
  {
    py::gil_scoped_release release;
    iterations = thin_guo_hall(src, h, w, w, dst, max_iter);
  }
  return py::make_tuple(out, iterations);
}

py::tuple enclosed_regions_py(const py::array& skeleton) {
  require_array<std::uint8_t>(skeleton, "skeleton", 2);
  const auto h = static_cast<std::ptrdiff_t>(skeleton.shape(0)), w = static_cast<std::ptrdiff_t>(skeleton.shape(1));
  py::array_t<std::int32_t> labels({h, w});
  const std::uint8_t* src = static_cast<const std::uint8_t*>(skeleton.data());
  std::int32_t* dst = labels.mutable_data();
  RegionTable table;
  {
    py::gil_scoped_release release;
    table = enclosed_regions(src, h, w, w, dst);
  }
  py::array_t<std::int64_t> area(static_cast<py::ssize_t>(table.area.size()));
  py::array_t<std::uint8_t> border(static_cast<py::ssize_t>(table.touches_border.size()));
  std::copy(table.area.begin(), table.area.end(), area.mutable_data());
  std::copy(table.touches_border.begin(), table.touches_border.end(), border.mutable_data());
  return py::make_tuple(labels, area, border);
}
}  // namespace

void register_skeleton(py::module_& m) {
  m.def("thin", &thin_py, py::arg("mask"), py::arg("max_iter"),
        "Guo-Hall thinning of a C-contiguous 2-D uint8 mask (nonzero = foreground) "
        "-> (skeleton uint8 0/1, iterations).");
  m.def("enclosed_regions", &enclosed_regions_py, py::arg("skeleton"),
        "4-connected background regions of a skeleton -> (labels int32, area int64[n], touches_border uint8[n]).");
}

}  // namespace her2fast::py_bindings
