// A read-only view of a 2-D block of encoded elements: a whole tensor, a row range of a fused
// projection, a column range of a transposed one, one expert of a stacked MoE tensor, or rows
// gathered from per-head groups (GPT-NeoX's interleaved query_key_value).
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
    size_t row_stride = 0;    // elements between the starts of consecutive rows (>= cols)
    size_t group_rows = 0;    // rows come in groups of this many (0: one group of all rows)
    size_t group_stride = 0;  // elements between the starts of consecutive groups

    // Element offset of row i from `data`.
    size_t row_offset(size_t i) const {
        if (group_rows == 0 || group_rows >= rows) return i * row_stride;
        return (i / group_rows) * group_stride + (i % group_rows) * row_stride;
    }
    // Row starts fall on block boundaries (job_view checks this for block types).
    const uint8_t* row(size_t i) const { return data + encoded_bytes(dtype, row_offset(i)); }
    size_t size() const { return rows * cols; }
    bool single_group() const { return group_rows == 0 || group_rows >= rows; }
    // Elements from `data` to one past the last element of the view.
    size_t extent() const { return rows == 0 || cols == 0 ? 0 : row_offset(rows - 1) + cols; }
};

}  // namespace wpf
