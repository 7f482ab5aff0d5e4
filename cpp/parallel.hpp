// Minimal fork-join helpers for the engine's worker threads.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace wpf {

// Runs fn(worker) for worker in [0, workers) on that many threads (the caller is worker 0),
// and rethrows the first exception any of them raised. Workers whose thread cannot be started
// (an address-space or process limit) run on the caller after its own share: slower, same result.
template <typename Fn>
void parallel_run(int workers, Fn&& fn) {
    workers = std::max(1, workers);
    std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
    // Every worker's share, on whichever thread runs it: its exception is kept for the caller.
    auto share = [&](int w) {
        try {
            fn(w);
        } catch (...) {
            errors[static_cast<size_t>(w)] = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    int started = 1;
    for (; started < workers; ++started) {
        try {
            pool.emplace_back(share, started);
        } catch (const std::system_error&) {
            break;
        }
    }
    share(0);
    for (int w = started; w < workers; ++w) share(w);
    for (auto& t : pool) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

// Splits [0, n) into `workers` contiguous ranges; fn(worker, begin, end).
template <typename Fn>
void parallel_ranges(int workers, size_t n, Fn&& fn) {
    workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(1, workers)), std::max<size_t>(n, 1)));
    parallel_run(workers, [&](int w) {
        const size_t b = n * static_cast<size_t>(w) / static_cast<size_t>(workers);
        const size_t e = n * static_cast<size_t>(w + 1) / static_cast<size_t>(workers);
        fn(w, b, e);
    });
}

inline int hardware_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace wpf
