#include "../watershed.hpp"

#include <limits>

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
py::array_t<std::int32_t> seeded_watershed_py(const py::array& elevation, const py::array& markers,
                                              std::int32_t n_labels, const py::object& mask, float barrier,
                                              double max_radius, const py::object& centre_base,
                                              const py::object& centre_frac, bool climb, int connectivity) {
  require_array<float>(elevation, "elevation", 2);
  require_array<std::int32_t>(markers, "markers", 2);
  const auto h = static_cast<std::ptrdiff_t>(elevation.shape(0)), w = static_cast<std::ptrdiff_t>(elevation.shape(1));
  if (markers.shape(0) != h || markers.shape(1) != w) throw py::value_error("markers must have the shape of elevation");
  const std::uint8_t* mask_ptr = nullptr;
  py::array mask_arr;
  if (!mask.is_none()) {
    mask_arr = mask.cast<py::array>();
    require_array<std::uint8_t>(mask_arr, "mask", 2);
    if (mask_arr.shape(0) != h || mask_arr.shape(1) != w)
      throw py::value_error("mask must have the shape of elevation");
    mask_ptr = static_cast<const std::uint8_t*>(mask_arr.data());
  }
  const std::int32_t* base_ptr = nullptr;
  const double* frac_ptr = nullptr;
  py::array base_arr, frac_arr;
  if (!centre_base.is_none() || !centre_frac.is_none()) {
    base_arr = centre_base.cast<py::array>();
    frac_arr = centre_frac.cast<py::array>();
    require_array<std::int32_t>(base_arr, "centre_base", 2);
    require_array<double>(frac_arr, "centre_frac", 2);
    if (base_arr.shape(0) != n_labels + 1 || base_arr.shape(1) != 2 || frac_arr.shape(0) != n_labels + 1 ||
        frac_arr.shape(1) != 2)
      throw py::value_error("centre_base and centre_frac must have shape (n_labels + 1, 2) = (" +
                            std::to_string(n_labels + 1) + ", 2)");
    base_ptr = static_cast<const std::int32_t*>(base_arr.data());
    frac_ptr = static_cast<const double*>(frac_arr.data());
  }
  py::array_t<std::int32_t> out({h, w});
  const float* elev = static_cast<const float*>(elevation.data());
  const std::int32_t* mk = static_cast<const std::int32_t*>(markers.data());
  std::int32_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    seeded_watershed(elev, h, w, mk, n_labels, mask_ptr, barrier, max_radius, base_ptr, frac_ptr, climb, dst,
                     connectivity);
  }
  return out;
}
}  // namespace

void register_watershed(py::module_& m) {
  m.def("seeded_watershed", &seeded_watershed_py, py::arg("elevation"), py::arg("markers"), py::arg("n_labels"),
        py::arg("mask"), py::arg("barrier"), py::arg("max_radius"), py::arg("centre_base"), py::arg("centre_frac"),
        py::arg("climb") = false, py::arg("connectivity") = 4,
        "Seeded watershed (4- or 8-connected, FIFO ties) with a membrane barrier and a per-label radius limit -> "
        "labels int32.");
}

}  // namespace her2fast::py_bindings
