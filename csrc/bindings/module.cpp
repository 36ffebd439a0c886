// her2fast._native: the C++ kernels, one binding file per area. std::invalid_argument thrown by a
// kernel reaches Python as ValueError (pybind11's standard translation).
#include "common.hpp"

PYBIND11_MODULE(_native, m) {
  m.doc() = "her2fast native kernels (private: use her2fast.texture, her2fast.superpixels and her2fast.cells)";
  her2fast::py_bindings::register_lbp(m);
  her2fast::py_bindings::register_slic(m);
  her2fast::py_bindings::register_superpixel_features(m);
  her2fast::py_bindings::register_skeleton(m);
  her2fast::py_bindings::register_watershed(m);
  her2fast::py_bindings::register_membrane_rays(m);
  her2fast::py_bindings::register_reconstruct(m);
  her2fast::py_bindings::register_distance(m);
  her2fast::py_bindings::register_label_table(m);
  her2fast::py_bindings::register_cell_stats(m);
  her2fast::py_bindings::register_nucleus_seeds(m);
  her2fast::py_bindings::register_nuclei(m);
  her2fast::py_bindings::register_ray_summary(m);
}
