#include "../lbp.hpp"
#include "../superpixel_features.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
py::array_t<double> superpixel_features_py(const py::array& image, const py::array& labels, std::int32_t n_labels,
                                           int P, double R) {
  require_array<std::uint8_t>(image, "image", 3);
  if (image.shape(2) != 3)
    throw py::value_error("image must have 3 channels (H, W, 3), got " + std::to_string(image.shape(2)));
  require_array<std::int32_t>(labels, "labels", 2);
  const auto h = static_cast<std::ptrdiff_t>(image.shape(0)), w = static_cast<std::ptrdiff_t>(image.shape(1));
  if (labels.shape(0) != h || labels.shape(1) != w) throw py::value_error("labels shape must equal the image's (H, W)");
  if (n_labels < 0) throw py::value_error("n_labels must be >= 0, got " + std::to_string(n_labels));
  if (P < 1 || P > kLbpMaxPoints)
    throw py::value_error("P must be in 1.." + std::to_string(kLbpMaxPoints) + ", got " + std::to_string(P));
  py::array_t<double> out({static_cast<py::ssize_t>(n_labels), static_cast<py::ssize_t>(superpixel_feature_count(P))});
  const std::uint8_t* src = static_cast<const std::uint8_t*>(image.data());
  const std::int32_t* lab = static_cast<const std::int32_t*>(labels.data());
  double* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    superpixel_features(src, h, w, 3 * w, lab, w, n_labels, P, R, dst);
  }
  return out;
}
}  // namespace

void register_superpixel_features(py::module_& m) {
  m.def("superpixel_features", &superpixel_features_py, py::arg("image"), py::arg("labels"), py::arg("n_labels"),
        py::arg("P"), py::arg("R"),
        "Per-superpixel [224-bin colour histogram | P+2 LBP histogram | pixel count] of a C-contiguous (H, W, 3) "
        "uint8 image with int32 labels (-1 = ignore).");
  m.attr("COLOUR_BINS") = kColourBins;
}

}  // namespace her2fast::py_bindings
