#include "../label_table.hpp"

#include "common.hpp"

namespace her2fast::py_bindings {

namespace {
py::tuple label_table_py(const py::array& labels, std::int64_t min_px, std::int64_t max_label) {
  require_array<std::int32_t>(labels, "labels", 2);
  const auto h = static_cast<std::ptrdiff_t>(labels.shape(0)), w = static_cast<std::ptrdiff_t>(labels.shape(1));
  py::array_t<std::int32_t> out({h, w});
  const auto* src = static_cast<const std::int32_t*>(labels.data());
  std::int32_t* dst = out.mutable_data();
  LabelTable t;
  {
    py::gil_scoped_release release;
    t = label_table(src, h, w, min_px, max_label, dst);
  }
  auto vec = [](const std::vector<std::int64_t>& v) {
    py::array_t<std::int64_t> a(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
  };
  return py::make_tuple(out, t.n, vec(t.count), vec(t.sum_x), vec(t.sum_y));
}
}  // namespace

void register_label_table(py::module_& m) {
  m.def("label_table", &label_table_py, py::arg("labels"), py::arg("min_px"), py::arg("max_label"),
        "Objects with >= min_px pixels renumbered 1..n in label order -> (labels int32, n, count, sum_x, sum_y).");
}

}  // namespace her2fast::py_bindings
