#include "../cell_stats.hpp"
#include "../deconvolve.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
py::tuple cell_landscape_py(const py::array& prob, const py::array& od, float threshold, float half_threshold,
                            float od_weight, float stain_cap) {
  require_array<float>(prob, "prob", 2);
  require_array<float>(od, "od", 2);
  const auto h = static_cast<py::ssize_t>(prob.shape(0)), w = static_cast<py::ssize_t>(prob.shape(1));
  if (od.shape(0) != h || od.shape(1) != w) throw py::value_error("od must have the shape of prob");
  py::array_t<float> land({h, w});
  py::array_t<bool> mask({h, w});
  const auto* p = static_cast<const float*>(prob.data());
  const auto* o = static_cast<const float*>(od.data());
  float* l = land.mutable_data();
  auto* m = reinterpret_cast<std::uint8_t*>(mask.mutable_data());
  {
    py::gil_scoped_release release;
    cell_landscape(p, o, h * w, threshold, half_threshold, od_weight, stain_cap, l, m);
  }
  return py::make_tuple(land, mask);
}

py::array_t<double> region_max_dist2_py(const py::array& regions, const py::array& region_ids,
                                        const py::array& centre_base, const py::array& centre_frac) {
  require_array<std::int32_t>(regions, "regions", 2);
  if (!py::isinstance<py::array_t<std::int32_t>>(region_ids) || !region_ids.dtype().is(py::dtype::of<std::int32_t>()) ||
      region_ids.ndim() != 1 || !(region_ids.flags() & py::array::c_style))
    throw py::value_error("region_ids must be a C-contiguous (m,) int32 array");
  const auto m = static_cast<std::int32_t>(region_ids.shape(0));
  if (!py::isinstance<py::array_t<std::int32_t>>(centre_base) ||
      !centre_base.dtype().is(py::dtype::of<std::int32_t>()) || centre_base.ndim() != 2 || centre_base.shape(0) != m ||
      centre_base.shape(1) != 2 || !(centre_base.flags() & py::array::c_style))
    throw py::value_error("centre_base must be a C-contiguous (m, 2) int32 array");
  if (!py::isinstance<py::array_t<double>>(centre_frac) || !centre_frac.dtype().is(py::dtype::of<double>()) ||
      centre_frac.ndim() != 2 || centre_frac.shape(0) != m || centre_frac.shape(1) != 2 ||
      !(centre_frac.flags() & py::array::c_style))
    throw py::value_error("centre_frac must be a C-contiguous (m, 2) float64 array");
  const auto h = static_cast<std::ptrdiff_t>(regions.shape(0)), w = static_cast<std::ptrdiff_t>(regions.shape(1));
  py::array_t<double> out(static_cast<py::ssize_t>(m));
  const auto* reg = static_cast<const std::int32_t*>(regions.data());
  const auto* ids = static_cast<const std::int32_t*>(region_ids.data());
  const auto* base = static_cast<const std::int32_t*>(centre_base.data());
  const auto* frac = static_cast<const double*>(centre_frac.data());
  double* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    region_max_dist2(reg, h, w, m, ids, base, frac, dst);
  }
  return out;
}

py::array_t<double> label_means_py(const py::array& labels, const py::array& values, const py::array& exclude,
                                   const py::array& exclude_labels, std::int32_t n_labels) {
  require_array<std::int32_t>(labels, "labels", 2);
  require_array<float>(values, "values", 2);
  require_array<std::uint8_t>(exclude, "exclude", 2);
  require_array<std::int32_t>(exclude_labels, "exclude_labels", 2);
  for (const py::array* a : {&values, &exclude, &exclude_labels})
    if (a->shape(0) != labels.shape(0) || a->shape(1) != labels.shape(1))
      throw py::value_error("labels, values, exclude and exclude_labels must have the same shape");
  if (n_labels < 0) throw py::value_error("n_labels must be >= 0");
  py::array_t<double> out(static_cast<py::ssize_t>(n_labels));
  const auto* lab = static_cast<const std::int32_t*>(labels.data());
  const auto* val = static_cast<const float*>(values.data());
  const auto* ex = static_cast<const std::uint8_t*>(exclude.data());
  const auto* exl = static_cast<const std::int32_t*>(exclude_labels.data());
  const auto n = static_cast<std::ptrdiff_t>(labels.size());
  double* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    label_means(lab, val, ex, exl, n, n_labels, dst);
  }
  return out;
}

py::array_t<float> deconvolve_rgb_py(const py::array& rgb, const py::array& lut, const py::array& unmix) {
  require_array<std::uint8_t>(rgb, "rgb", 3);
  require_array<float>(lut, "lut", 2);
  require_array<float>(unmix, "unmix", 2);
  if (rgb.shape(2) != 3) throw py::value_error("rgb must be (H, W, 3)");
  if (lut.shape(0) != 256 || lut.shape(1) != 3) throw py::value_error("lut must be (256, 3)");
  if (unmix.shape(0) != 3 || unmix.shape(1) != 3) throw py::value_error("unmix must be (3, 3)");
  const auto h = static_cast<py::ssize_t>(rgb.shape(0)), w = static_cast<py::ssize_t>(rgb.shape(1));
  py::array_t<float> out({py::ssize_t{3}, h, w});
  const auto* src = static_cast<const std::uint8_t*>(rgb.data());
  const auto* l = static_cast<const float*>(lut.data());
  const auto* u = static_cast<const float*>(unmix.data());
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    deconvolve_rgb(src, h * w, l, u, dst);
  }
  return out;
}
}  // namespace

void register_cell_stats(py::module_& m) {
  m.def("cell_landscape", &cell_landscape_py, py::arg("prob"), py::arg("od"), py::arg("threshold"),
        py::arg("half_threshold"), py::arg("od_weight"), py::arg("stain_cap"),
        "The cells' flood landscape and membrane mask -> (land float32[h, w], membrane bool[h, w]).");
  m.def("region_max_dist2", &region_max_dist2_py, py::arg("regions"), py::arg("region_ids"), py::arg("centre_base"),
        py::arg("centre_frac"), "Largest squared distance of each listed region's pixels to its centre -> float64[m].");
  m.def("label_means", &label_means_py, py::arg("labels"), py::arg("values"), py::arg("exclude"),
        py::arg("exclude_labels"), py::arg("n_labels"),
        "Mean value per label 1..n_labels over pixels not excluded -> float64[n_labels] (0 where none).");
  m.def("deconvolve_rgb", &deconvolve_rgb_py, py::arg("rgb"), py::arg("lut"), py::arg("unmix"),
        "Optical density by lookup table, then the 3x3 unmixing -> float32[3, H, W] stain planes.");
}

}  // namespace her2fast::py_bindings
