// Error types of the engine. The bindings map them into the package's hierarchy (errors.py):
// FormatError -> WeightprintFormatError, FileAccessError and std::invalid_argument -> InputError,
// anything else -> EngineError.
#pragma once
#include <stdexcept>
#include <string>

namespace wpf {

// The input violates the safetensors format (or a window lies outside its tensor).
struct FormatError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The operating system refused a file (missing, unreadable, not a regular file, cannot be mapped):
// the input's fault, but not a violation of its format.
struct FileAccessError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Why a matrix gets no singular values; thrown as std::domain_error by require_finite.
inline constexpr const char* kNonFiniteMatrix = "matrix holds NaN or Inf values; singular values are undefined";

inline void require_finite(bool ok) {
    if (!ok) throw std::domain_error(kNonFiniteMatrix);
}

// The caller asked to stop (Ctrl-C); work already done is discarded.
struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("cancelled") {}
};

}  // namespace wpf
