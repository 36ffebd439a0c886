// Runtime CPU dispatch for hot loops, without probing the build machine (no -march=native).
// HER2FAST_HOT marks a function that GCC compiles for AVX-512, AVX2 and baseline x86-64 and
// picks at load time (ifunc). Elsewhere (clang, aarch64, macOS, Windows, sanitizer builds) it is empty.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(HER2FAST_NO_DISPATCH)
#define HER2FAST_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HER2FAST_HOT
#endif
