#include "../ray_summary.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
void require_table(const py::array& a, const char* name) {
  if (!py::isinstance<py::array_t<float>>(a) || !a.dtype().is(py::dtype::of<float>()) || a.ndim() != 2 ||
      !(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be a C-contiguous (m, r) float32 array");
}

py::tuple ray_summary_py(const py::array& run, const py::array& peak, const py::object& run_tol, std::int64_t gap) {
  require_table(run, "run");
  require_table(peak, "peak");
  const auto m = static_cast<py::ssize_t>(run.shape(0)), r = static_cast<py::ssize_t>(run.shape(1));
  if (r < 1) throw py::value_error("run must have at least one ray per cell");
  if (peak.shape(0) != m || peak.shape(1) != r) throw py::value_error("peak must have the shape of run");
  py::array tol;
  const float* tp = nullptr;
  if (!run_tol.is_none()) {
    tol = run_tol.cast<py::array>();
    require_table(tol, "run_tol");
    if (tol.shape(0) != m || tol.shape(1) != r) throw py::value_error("run_tol must have the shape of run");
    tp = static_cast<const float*>(tol.data());
  }
  py::array_t<double> completeness(m);
  py::array_t<float> od_median(m), run_median(m);
  py::array_t<std::int64_t> n_cov(m);
  const auto* ru = static_cast<const float*>(run.data());
  const auto* pk = static_cast<const float*>(peak.data());
  double* c = completeness.mutable_data();
  float* om = od_median.mutable_data();
  float* rm = run_median.mutable_data();
  std::int64_t* nc = n_cov.mutable_data();
  {
    py::gil_scoped_release release;
    ray_summary(ru, pk, tp, m, r, gap, c, om, rm, nc);
  }
  return py::make_tuple(completeness, od_median, run_median, n_cov);
}
py::tuple label_sums_py(const py::array& labels, std::int32_t n_labels) {
  require_array<std::int32_t>(labels, "labels", 2);
  if (n_labels < 0) throw py::value_error("n_labels must be >= 0");
  const auto h = static_cast<std::ptrdiff_t>(labels.shape(0)), w = static_cast<std::ptrdiff_t>(labels.shape(1));
  const auto nl = static_cast<py::ssize_t>(n_labels);
  py::array_t<std::int64_t> count(nl), sum_x(nl), sum_y(nl);
  const auto* lab = static_cast<const std::int32_t*>(labels.data());
  std::int64_t* c = count.mutable_data();
  std::int64_t* sx = sum_x.mutable_data();
  std::int64_t* sy = sum_y.mutable_data();
  {
    py::gil_scoped_release release;
    label_sums(lab, h, w, n_labels, c, sx, sy);
  }
  return py::make_tuple(count, sum_x, sum_y);
}
}  // namespace

void register_ray_summary(py::module_& m) {
  m.def("ray_summary", &ray_summary_py, py::arg("run"), py::arg("peak"), py::arg("run_tol"), py::arg("gap"),
        "Per cell: completeness with gaps of <= gap rays closed, lower medians of the covered rays' peak OD and run "
        "length, covered rays -> (float64, float32, float32, int64) (ray_summary.hpp).");
  m.def("label_sums", &label_sums_py, py::arg("labels"), py::arg("n_labels"),
        "Pixel count and sums of column and row indices per label 0..n_labels - 1 (others ignored) -> 3 x int64.");
}

}  // namespace her2fast::py_bindings
