#include "../slic.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
py::tuple slic_py(const py::array& image, int n_segments, double compactness, int max_iter, const py::object& mask,
                  bool enforce_connectivity, double min_size_factor) {
  require_array<std::uint8_t>(image, "image", 3);
  if (image.shape(2) != 3)
    throw py::value_error("image must have 3 channels (H, W, 3), got " + std::to_string(image.shape(2)));
  const auto h = static_cast<std::ptrdiff_t>(image.shape(0)), w = static_cast<std::ptrdiff_t>(image.shape(1));
  const std::uint8_t* mask_ptr = nullptr;
  py::array mask_arr;
  if (!mask.is_none()) {
    mask_arr = py::array(mask);
    require_array<std::uint8_t>(mask_arr, "mask", 2);
    if (mask_arr.shape(0) != h || mask_arr.shape(1) != w)
      throw py::value_error("mask shape must equal the image's (H, W)");
    mask_ptr = static_cast<const std::uint8_t*>(mask_arr.data());
  }
  SlicParams prm;
  prm.n_segments = n_segments;
  prm.compactness = compactness;
  prm.max_iter = max_iter;
  prm.enforce_connectivity = enforce_connectivity;
  prm.min_size_factor = min_size_factor;
  py::array_t<std::int32_t> labels({h, w});
  const std::uint8_t* src = static_cast<const std::uint8_t*>(image.data());
  std::int32_t* dst = labels.mutable_data();
  int k;
  {
    py::gil_scoped_release release;
    k = slic(src, h, w, 3 * w, mask_ptr, w, prm, dst);
  }
  return py::make_tuple(labels, k);
}
}  // namespace

void register_slic(py::module_& m) {
  m.def("slic", &slic_py, py::arg("image"), py::arg("n_segments"), py::arg("compactness"), py::arg("max_iter"),
        py::arg("mask"), py::arg("enforce_connectivity"), py::arg("min_size_factor"),
        "SLIC superpixels of a C-contiguous (H, W, 3) uint8 image; mask: None or (H, W) uint8. "
        "Returns (labels int32 (H, W), K).");
}

}  // namespace her2fast::py_bindings
