// Shared checks for the pybind11 bindings: only C-contiguous arrays of the exact dtype are accepted
// (the public Python wrappers prepare arrays; these checks keep the kernels memory-safe).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace her2fast::py_bindings {

namespace py = pybind11;

template <typename T>
void require_array(const py::array& a, const char* name, int ndim) {
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>()))
    throw py::value_error(std::string(name) + " must have dtype " + std::string(py::str(py::dtype::of<T>())) +
                          ", got " + std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " +
                          std::to_string(a.ndim()) + "-D");
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous (use numpy.ascontiguousarray)");
  if (a.size() == 0) throw py::value_error(std::string(name) + " must not be empty");
}

void register_lbp(py::module_& m);
void register_slic(py::module_& m);
void register_superpixel_features(py::module_& m);
void register_skeleton(py::module_& m);
void register_watershed(py::module_& m);
void register_membrane_rays(py::module_& m);
void register_reconstruct(py::module_& m);
void register_distance(py::module_& m);
void register_label_table(py::module_& m);
void register_cell_stats(py::module_& m);
void register_nucleus_seeds(py::module_& m);
void register_nuclei(py::module_& m);
void register_ray_summary(py::module_& m);

}  // namespace her2fast::py_bindings
