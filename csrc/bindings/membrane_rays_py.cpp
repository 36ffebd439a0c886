#include "../membrane_rays.hpp"

#include "common.hpp"

#include <limits>
#include <utility>

namespace her2fast::py_bindings {

namespace {
// The three maps both kernels read: labels int32, membrane uint8, dab_od float32, all h x w.
std::pair<std::ptrdiff_t, std::ptrdiff_t> require_tile_maps(const py::array& labels, const py::array& membrane,
                                                            const py::array& dab_od) {
  require_array<std::int32_t>(labels, "labels", 2);
  require_array<std::uint8_t>(membrane, "membrane", 2);
  require_array<float>(dab_od, "dab_od", 2);
  const auto h = static_cast<std::ptrdiff_t>(labels.shape(0)), w = static_cast<std::ptrdiff_t>(labels.shape(1));
  if (membrane.shape(0) != h || membrane.shape(1) != w || dab_od.shape(0) != h || dab_od.shape(1) != w)
    throw py::value_error("labels, membrane and dab_od must have the same shape");
  return {h, w};
}

py::tuple membrane_rays_py(const py::array& labels, const py::array& membrane, const py::array& dab_od,
                           const py::array& centre_base, const py::array& centre_frac, int n_rays, double max_length,
                           double outside_reach, double max_run, double cap_radius, double cap_reach,
                           const py::object& cell_labels) {
  const auto [h, w] = require_tile_maps(labels, membrane, dab_od);
  if (!py::isinstance<py::array_t<std::int32_t>>(centre_base) ||
      !centre_base.dtype().is(py::dtype::of<std::int32_t>()) || centre_base.ndim() != 2 || centre_base.shape(1) != 2 ||
      !(centre_base.flags() & py::array::c_style))
    throw py::value_error("centre_base must be a C-contiguous (n, 2) int32 array");
  if (!py::isinstance<py::array_t<double>>(centre_frac) || !centre_frac.dtype().is(py::dtype::of<double>()) ||
      centre_frac.ndim() != 2 || centre_frac.shape(1) != 2 || !(centre_frac.flags() & py::array::c_style) ||
      centre_frac.shape(0) != centre_base.shape(0))
    throw py::value_error("centre_frac must be a C-contiguous float64 array of the shape of centre_base");
  if (n_rays < 1) throw py::value_error("n_rays must be >= 1, got " + std::to_string(n_rays));
  const auto n = static_cast<std::int32_t>(centre_base.shape(0));
  const std::int32_t* cl = nullptr;
  py::array a;  // keeps a converted array alive while the kernel reads it
  if (!cell_labels.is_none()) {
    a = cell_labels.cast<py::array>();
    if (!py::isinstance<py::array_t<std::int32_t>>(a) || !a.dtype().is(py::dtype::of<std::int32_t>()) ||
        a.ndim() != 1 || !(a.flags() & py::array::c_style) || a.shape(0) != n)
      throw py::value_error("cell_labels must be a C-contiguous (n,) int32 array, one label per centre");
    cl = static_cast<const std::int32_t*>(a.data());
  }
  py::array_t<float> run({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(n_rays)});
  py::array_t<float> peak({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(n_rays)});
  const auto* lab = static_cast<const std::int32_t*>(labels.data());
  const auto* mem = static_cast<const std::uint8_t*>(membrane.data());
  const auto* od = static_cast<const float*>(dab_od.data());
  const auto* base = static_cast<const std::int32_t*>(centre_base.data());
  const auto* frac = static_cast<const double*>(centre_frac.data());
  float* run_ptr = run.mutable_data();
  float* peak_ptr = peak.mutable_data();
  {
    py::gil_scoped_release release;
    membrane_rays(lab, mem, od, h, w, n, base, frac, n_rays, max_length, outside_reach, max_run, cap_radius, cap_reach,
                  run_ptr, peak_ptr, cl);
  }
  return py::make_tuple(run, peak);
}
py::array_t<double> own_side_gate_py(const py::array& labels, const py::array& membrane, const py::array& dab_od,
                                     const py::array& cell_labels, const py::array& centre_base,
                                     const py::array& centre_frac, const py::array& covered,
                                     const py::array& run_length, const py::array& dir_x, const py::array& dir_y,
                                     double max_length, double step, int n05, int n15, int run_extra,
                                     double far_weight) {
  const auto [h, w] = require_tile_maps(labels, membrane, dab_od);
  require_array<std::int32_t>(cell_labels, "cell_labels", 1);
  require_array<std::int32_t>(centre_base, "centre_base", 2);
  require_array<double>(centre_frac, "centre_frac", 2);
  require_array<std::uint8_t>(covered, "covered", 2);
  require_array<float>(run_length, "run_length", 2);
  require_array<double>(dir_x, "dir_x", 1);
  require_array<double>(dir_y, "dir_y", 1);
  const auto n = static_cast<std::int32_t>(cell_labels.shape(0));
  const auto n_rays = static_cast<int>(dir_x.shape(0));
  if (dir_y.shape(0) != n_rays) throw py::value_error("dir_x and dir_y must have the same length");
  if (centre_base.shape(0) != n || centre_base.shape(1) != 2 || centre_frac.shape(0) != n || centre_frac.shape(1) != 2)
    throw py::value_error("centre_base and centre_frac must have shape (n_cells, 2)");
  if (covered.shape(0) != n || covered.shape(1) != n_rays || run_length.shape(0) != n || run_length.shape(1) != n_rays)
    throw py::value_error("covered and run_length must have shape (n_cells, n_rays)");
  py::array_t<double> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(n_rays)});
  const auto* lab = static_cast<const std::int32_t*>(labels.data());
  const auto* mem = static_cast<const std::uint8_t*>(membrane.data());
  const auto* od = static_cast<const float*>(dab_od.data());
  const auto* cl = static_cast<const std::int32_t*>(cell_labels.data());
  const auto* base = static_cast<const std::int32_t*>(centre_base.data());
  const auto* frac = static_cast<const double*>(centre_frac.data());
  const auto* cov = static_cast<const std::uint8_t*>(covered.data());
  const auto* run = static_cast<const float*>(run_length.data());
  const auto* dx = static_cast<const double*>(dir_x.data());
  const auto* dy = static_cast<const double*>(dir_y.data());
  double* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    own_side_gate(lab, mem, od, h, w, n, cl, base, frac, cov, run, n_rays, dx, dy, max_length, step, n05, n15,
                  run_extra, far_weight, dst);
  }
  return out;
}
}  // namespace

void register_membrane_rays(py::module_& m) {
  m.def("membrane_rays", &membrane_rays_py, py::arg("labels"), py::arg("membrane"), py::arg("dab_od"),
        py::arg("centre_base"), py::arg("centre_frac"), py::arg("n_rays"), py::arg("max_length"),
        py::arg("outside_reach"), py::arg("max_run"), py::arg("cap_radius") = std::numeric_limits<double>::infinity(),
        py::arg("cap_reach") = 0.0, py::arg("cell_labels") = py::none(),
        "Membrane runs along rays from each cell centre "
        "-> (run_length float32[n, n_rays], peak_od float32[n, n_rays]).");
  m.def("own_side_gate", &own_side_gate_py, py::arg("labels"), py::arg("membrane"), py::arg("dab_od"),
        py::arg("cell_labels"), py::arg("centre_base"), py::arg("centre_frac"), py::arg("covered"),
        py::arg("run_length"), py::arg("dir_x"), py::arg("dir_y"), py::arg("max_length"), py::arg("step"),
        py::arg("n05"), py::arg("n15"), py::arg("run_extra"), py::arg("far_weight"),
        "Own-side gated peak DAB OD of each covered ray -> float64[n_cells, n_rays] (+inf: not measured).");
}

}  // namespace her2fast::py_bindings
