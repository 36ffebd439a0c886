// Raw memory for large scratch buffers, shared by the kernels that need it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace her2fast {
namespace detail {

// Blocks of 2 MiB and more are 2 MiB-aligned and, on Linux, advised for transparent huge pages
// (faulting in fresh memory 4 KiB at a time costs more than the work done on it, and random accesses
// over several MiB then miss the TLB less). Free with std::free.
inline void* allocate_big(std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::size_t huge = std::size_t{1} << 21;
  if (bytes >= huge) {
    const std::size_t rounded = (bytes + huge - 1) / huge * huge;
    void* p = nullptr;
    if (posix_memalign(&p, huge, rounded) == 0) {
      madvise(p, rounded, MADV_HUGEPAGE);  // a hint: failure is harmless
      return p;
    }
  }
#endif
  void* p = std::malloc(std::max<std::size_t>(1, bytes));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace detail
}  // namespace her2fast
