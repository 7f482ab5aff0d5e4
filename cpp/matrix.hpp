// A read-only view of a 2-D block of encoded elements: a whole tensor, a row range of a fused
// projection, a column range of a transposed one, or one expert of a stacked MoE tensor.
#pragma once
#include <cstddef>
#include <cstdint>

#include "dtype.hpp"

namespace wpf {

struct MatrixView {
    const uint8_t* data = nullptr;  // first element
    DType dtype = DType::F32;
    size_t rows = 0;
    size_t cols = 0;
    size_t row_stride = 0;  // elements between the starts of consecutive rows (>= cols)

    const uint8_t* row(size_t i) const { return data + i * row_stride * dtype_size(dtype); }
    size_t size() const { return rows * cols; }
    bool contiguous() const { return row_stride == cols || rows <= 1; }
    MatrixView row_range(size_t begin, size_t end) const {
        return MatrixView{row(begin), dtype, end - begin, cols, row_stride};
    }
};

}  // namespace wpf
