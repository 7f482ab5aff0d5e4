#include "scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "blas.hpp"
#include "errors.hpp"
#include "parallel.hpp"

namespace wpf {

MatrixView job_view(const TensorFile& file, const Job& job) {
    const TensorInfo& t = file.tensor(job.tensor);
    auto fail = [&](const std::string& why) -> void {
        throw FormatError(file.path() + ": tensor '" + t.name + "': " + why);
    };
    if (!is_decoded(t.dtype))
        fail(block_elements(t.dtype) > 1
                 ? std::string("unsupported quantization ") + dtype_name(t.dtype) + " (decoded: " + decoded_dtypes() +
                       ")"
                 : std::string("dtype ") + dtype_name(t.dtype) + " is not a floating-point type");
    if (job.cols > job.row_stride && job.rows > 1) fail("window row stride is smaller than its width");
    const bool grouped = job.group_rows > 0 && job.group_rows < job.rows;
    if (grouped && job.group_stride < job.group_rows * job.row_stride) fail("window groups overlap");
    // Bound every quantity before multiplying, so that the offset arithmetic cannot wrap.
    const uint64_t limit = t.numel;
    if (job.offset > limit || job.rows > limit || job.cols > limit || job.row_stride > limit ||
        job.group_stride > limit)
        fail("window lies outside the tensor's " + std::to_string(t.numel) + " elements");
    // Quantized rows are decoded from block boundaries.
    const size_t b = block_elements(t.dtype);
    if (b > 1 && (job.offset % b || (job.rows > 1 && job.row_stride % b) || (grouped && job.group_stride % b)))
        fail(std::string("window does not start its rows on ") + dtype_name(t.dtype) + " block boundaries");
    MatrixView v{file.tensor_data(t) + encoded_bytes(t.dtype, job.offset),
                 t.dtype,
                 job.rows,
                 job.cols,
                 std::max(job.row_stride, job.cols),
                 grouped ? job.group_rows : 0,
                 grouped ? job.group_stride : 0};
    using u128 = unsigned __int128;
    const size_t last = job.rows ? job.rows - 1 : 0;
    const u128 last_row =
        grouped ? u128(last / job.group_rows) * job.group_stride + u128(last % job.group_rows) * v.row_stride
                : u128(last) * v.row_stride;
    if (job.rows > 0 && job.cols > 0 && u128(job.offset) + last_row + job.cols > limit)
        fail("window [offset " + std::to_string(job.offset) + ", " + std::to_string(job.rows) + " x " +
             std::to_string(job.cols) + "] lies outside the tensor's " + std::to_string(t.numel) + " elements");
    return v;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Span {
    uint64_t offset = 0, len = 0;  // bytes within the file
};

Span job_span(const TensorFile& f, const MatrixView& v) {
    if (v.rows == 0 || v.cols == 0) return {};
    const uint64_t start = static_cast<uint64_t>(v.data - f.map().data());
    const uint64_t b = block_elements(v.dtype);
    const uint64_t len = encoded_bytes(v.dtype, (v.extent() + b - 1) / b * b);
    return {start, len};
}

class Runner {
public:
    Runner(const std::vector<const TensorFile*>& files, const std::vector<Job>& jobs, const RunOptions& opt)
        : files_(files), jobs_(jobs), opt_(opt), results_(jobs.size()) {
        threads_ = opt.threads > 0 ? opt.threads : hardware_threads();
        for (const Job& j : jobs) {
            if (j.file >= files.size()) throw std::out_of_range("job refers to a file index out of range");
            views_.push_back(job_view(*files[j.file], j));
            if (j.gram.block > 0) check_block_gram(views_.back(), j.gram);
            if (j.probe.count > 0) check_probe(views_.back(), j.probe);
            if (j.sketch > 0) check_sketch(j.sketch);
            spans_.push_back(job_span(*files[j.file], views_.back()));
            total_bytes_ += spans_.back().len;
        }
    }

    std::atomic<bool> cancel{false};
    std::atomic<size_t> jobs_done{0};
    std::atomic<uint64_t> bytes_done{0};
    uint64_t total_bytes() const { return total_bytes_; }
    std::vector<JobResult>& results() { return results_; }

    void run() {
        std::vector<size_t> order(jobs_.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            if (jobs_[a].file != jobs_[b].file) return jobs_[a].file < jobs_[b].file;
            return spans_[a].offset < spans_[b].offset;
        });
        const blas::RestoreThreads restore_blas_threads;
        size_t i = 0;
        while (i < order.size()) {
            if (cancel) throw Cancelled();
            if (is_large(order[i])) {
                if (i + 1 < order.size()) prefetch(order[i + 1]);
                blas::set_threads(threads_);
                process(order[i], threads_);
                ++i;
                continue;
            }
            size_t e = i;
            while (e < order.size() && !is_large(order[e])) ++e;
            run_small(order, i, e);
            i = e;
        }
    }

private:
    const std::vector<const TensorFile*>& files_;
    const std::vector<Job>& jobs_;
    RunOptions opt_;
    int threads_ = 1;
    std::vector<MatrixView> views_;
    std::vector<Span> spans_;
    uint64_t total_bytes_ = 0;
    std::vector<JobResult> results_;

    bool is_large(size_t j) const { return views_[j].size() >= opt_.large_elements; }

    void prefetch(size_t j) const { files_[jobs_[j].file]->map().will_need(spans_[j].offset, spans_[j].len); }

    void run_small(const std::vector<size_t>& order, size_t begin, size_t end) {
        blas::set_threads(1);
        std::atomic<size_t> next{begin};
        parallel_run(std::min<int>(threads_, static_cast<int>(end - begin)), [&](int) {
            for (size_t i = next++; i < end && !cancel; i = next++) {
                prefetch(order[i]);
                process(order[i], 1);
            }
        });
        if (cancel) throw Cancelled();
    }

    void process(size_t j, int threads) {
        const auto t0 = std::chrono::steady_clock::now();
        const Job& job = jobs_[j];
        const MatrixView& v = views_[j];
        JobResult& r = results_[j];
        const MappedFile& map = files_[job.file]->map();
        map.will_need(spans_[j].offset, spans_[j].len);
        if (job.stats) {
            r.moments = moments(v, threads, &cancel);
            r.has_stats = true;
            r.stats_seconds = seconds_since(t0);
        }
        // A matrix the statistics found NaN or Inf in gets neither spectrum nor Gram blocks.
        const bool known_nonfinite = r.has_stats && (r.moments.nan || r.moments.inf);
        if (known_nonfinite && (job.k > 0 || job.gram.block > 0 || job.probe.count > 0 || job.sketch > 0))
            r.error = kNonFiniteMatrix;
        if (job.k > 0 && !known_nonfinite) {
            SvdOptions so = opt_.svd;
            so.threads = threads;
            try {
                r.svd = top_singular_values(v, job.k, so, &cancel);
                r.has_svd = true;
            } catch (const std::domain_error& e) {
                r.error = e.what();
            }
        }
        if (job.gram.block > 0 && !known_nonfinite) {
            const auto g0 = std::chrono::steady_clock::now();
            try {
                r.gram = block_gram(v, job.gram, threads, &cancel);
                r.gram_block = job.gram.block;
            } catch (const std::domain_error& e) {
                r.error = e.what();
            }
            r.gram_seconds = seconds_since(g0);
        }
        if (job.probe.count > 0 && !known_nonfinite) {
            const auto p0 = std::chrono::steady_clock::now();
            try {
                r.probe = probe_product(v, job.probe, threads, &cancel);
                r.probe_rows = job.probe.columns ? job.probe.count : v.rows;
                r.probe_cols = job.probe.columns ? v.cols : job.probe.count;
            } catch (const std::domain_error& e) {
                r.error = e.what();
            }
            r.gram_seconds += seconds_since(p0);
        }
        if (job.sketch > 0 && !known_nonfinite) {
            const auto s0 = std::chrono::steady_clock::now();
            try {
                r.sketch = count_sketch(v, job.sketch, threads, &cancel);
            } catch (const std::domain_error& e) {
                r.error = e.what();
            }
            r.gram_seconds += seconds_since(s0);
        }
        map.release(spans_[j].offset, spans_[j].len);
        r.seconds = seconds_since(t0);
        bytes_done += spans_[j].len;
        ++jobs_done;
    }
};

}  // namespace

std::vector<JobResult> analyse(const std::vector<const TensorFile*>& files, const std::vector<Job>& jobs,
                               const RunOptions& options, const ProgressFn& on_progress) {
    Runner runner(files, jobs, options);
    std::mutex mu;
    std::condition_variable cv;
    bool finished = false;
    std::exception_ptr error;
    auto run = [&] {
        try {
            runner.run();
        } catch (...) {
            error = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(mu);
        finished = true;
        cv.notify_all();
    };
    std::thread worker;
    try {
        worker = std::thread(run);
    } catch (const std::system_error&) {
        // No thread to spare (an address-space or process limit): the work runs here, without
        // progress reports until it ends.
        run();
    }
    auto snapshot = [&] {
        return Progress{runner.jobs_done.load(), jobs.size(), runner.bytes_done.load(), runner.total_bytes()};
    };
    bool stop = false;
    {
        std::unique_lock<std::mutex> lock(mu);
        while (!finished) {
            cv.wait_for(lock, std::chrono::milliseconds(100));
            if (finished) break;
            lock.unlock();
            if (!stop && on_progress && !on_progress(snapshot())) {
                stop = true;
                runner.cancel = true;
            }
            lock.lock();
        }
    }
    if (worker.joinable()) worker.join();
    if (stop) throw Cancelled();
    if (error) std::rethrow_exception(error);
    if (on_progress && !on_progress(snapshot())) throw Cancelled();
    return std::move(runner.results());
}

}  // namespace wpf
