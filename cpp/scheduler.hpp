// Analyses a list of matrices across memory-mapped files of any format: statistics, top-k
// singular values and Gram blocks.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "block_gram.hpp"
#include "probe.hpp"
#include "sketch.hpp"
#include "spectral.hpp"
#include "stats.hpp"
#include "tensor_file.hpp"

namespace wpf {

struct Job {
    size_t file = 0;  // index into the files passed to analyse()
    std::string tensor;
    uint64_t offset = 0;  // first element of the window inside the tensor
    size_t rows = 0, cols = 0, row_stride = 0;
    size_t group_rows = 0, group_stride = 0;  // see MatrixView
    bool stats = true;
    int k = 0;           // singular values wanted; 0 for none
    BlockGramSpec gram;  // diagonal Gram blocks wanted (gram.block > 0)
    ProbeSpec probe;     // probe products wanted (probe.count > 0)
    size_t sketch = 0;   // count-sketch buckets wanted (0: none)
};

struct JobResult {
    bool has_stats = false;
    Moments moments;
    bool has_svd = false;
    SvdResult svd;
    std::vector<double> gram;               // see block_gram(); empty when not wanted or not finite
    size_t gram_block = 0;                  // the blocks' size when gram is set
    std::vector<double> probe;              // see probe_product(); empty when not wanted or not finite
    size_t probe_rows = 0, probe_cols = 0;  // its shape, row-major
    std::vector<double> sketch;             // see count_sketch(); empty when not wanted or not finite
    std::string error;                      // why the singular values are missing (e.g. NaN in the matrix)
    double seconds = 0;
    double stats_seconds = 0;  // the moments pass
    double gram_seconds = 0;   // the Gram blocks and probe products
};

struct Progress {
    size_t jobs_done = 0, jobs_total = 0;
    uint64_t bytes_done = 0, bytes_total = 0;
};

struct RunOptions {
    int threads = 0;  // 0: all usable cores
    SvdOptions svd;
    size_t large_elements = size_t{1} << 20;  // at and above: one matrix at a time, threaded BLAS
};

// Called on the caller's thread about every 100 ms and once at the end; return false to cancel.
using ProgressFn = std::function<bool(const Progress&)>;

// Small matrices run concurrently, one thread each with single-threaded BLAS; large ones run one
// at a time with every thread, so threads never oversubscribe the cores. Work goes in file order
// and each window's pages are released when it is done. Throws Cancelled if on_progress said stop,
// FormatError if a job's window lies outside its tensor or its type has no decoder.
std::vector<JobResult> analyse(const std::vector<const TensorFile*>& files, const std::vector<Job>& jobs,
                               const RunOptions& options, const ProgressFn& on_progress);

// The view of a job's window, validated against the tensor's shape and dtype.
MatrixView job_view(const TensorFile& file, const Job& job);

}  // namespace wpf
