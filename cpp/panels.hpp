// How the BLAS-backed kernels that read every row once (Gram blocks, probe products) walk a
// matrix: panels of decoded rows, split into row ranges for the workers.
#pragma once
#include <algorithm>
#include <cstddef>

#include "dtype.hpp"
#include "matrix.hpp"

namespace wpf {

// Panels of decoded rows stay near this many doubles (16 MB) and at most 256 rows: BLAS calls
// on them (Gram blocks, probe products) need many rows to run at speed.
constexpr size_t kPanelValues = size_t{1} << 21;

inline size_t panel_rows(size_t cols) {
    return std::max<size_t>(1, std::min<size_t>(256, kPanelValues / std::max<size_t>(cols, 1)));
}

// Workers for a matrix of `rows` rows read in panels: at most `threads`, at least one panel each.
inline int panel_workers(size_t rows, size_t panel, int threads) {
    return static_cast<int>(
        std::min<size_t>(static_cast<size_t>(std::max(1, threads)), std::max<size_t>(1, rows / panel)));
}

// Decodes rows [first, first + count) into buf (row i at buf + i * cols); false if any is not finite.
template <typename Out>
bool decode_panel(const MatrixView& a, size_t first, size_t count, Out* buf) {
    for (size_t i = 0; i < count; ++i) decode_range(a.dtype, a.row(first + i), 0, a.cols, buf + i * a.cols);
    return all_finite(buf, count * a.cols);
}

}  // namespace wpf
