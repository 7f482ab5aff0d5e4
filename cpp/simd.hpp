// Runtime CPU dispatch for the hot loops: on x86-64 Linux (GCC/Clang ifunc), each marked function
// is compiled for AVX-512, AVX2/FMA and the portable baseline, and the best one is picked at load
// time. Elsewhere (aarch64, macOS) the marked functions are compiled once for the target.
#pragma once

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define WPF_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define WPF_MULTIVERSION
#endif
