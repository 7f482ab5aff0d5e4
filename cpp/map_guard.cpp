#include "map_guard.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

namespace wpf::map_guard {

namespace {

// Slots are read by the signal handler, so they are fixed storage with atomic bounds, written in
// an order that keeps a half-written slot invisible (path and end before begin).
constexpr int kSlots = 4096;
constexpr size_t kPath = 1024;

struct Slot {
    std::atomic<uintptr_t> begin{0};
    std::atomic<uintptr_t> end{0};
    char path[kPath] = {};
};

Slot slots[kSlots];
std::mutex claim;  // writers only; the handler never takes it

void write_all(const char* s, size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= static_cast<size_t>(w);
    }
}

void on_bus_error(int sig, siginfo_t* info, void*) {
    const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    for (const Slot& s : slots) {
        const uintptr_t b = s.begin.load(std::memory_order_acquire);
        if (b != 0 && addr >= b && addr < s.end.load(std::memory_order_relaxed)) {
            static const char head[] = "weightprint: error: ";
            static const char tail[] =
                ": the file was truncated or replaced while it was being read (its bytes past the new end "
                "are gone); nothing was written\n";
            write_all(head, sizeof(head) - 1);
            write_all(s.path, strnlen(s.path, kPath));
            write_all(tail, sizeof(tail) - 1);
            ::_exit(2);
        }
    }
    // Not a mapped checkpoint: the default action (a core dump, as without this handler).
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void install() {
    struct sigaction sa{};
    sa.sa_sigaction = on_bus_error;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, nullptr);
}

}  // namespace

int remember(const uint8_t* begin, uint64_t size, const std::string& path) {
    static std::once_flag installed;
    std::call_once(installed, install);
    if (begin == nullptr || size == 0) return -1;
    std::lock_guard<std::mutex> lock(claim);
    for (int i = 0; i < kSlots; ++i) {
        Slot& s = slots[i];
        if (s.begin.load(std::memory_order_relaxed) != 0) continue;
        const size_t n = std::min(path.size(), kPath - 1);
        std::memcpy(s.path, path.data(), n);
        s.path[n] = '\0';
        s.end.store(reinterpret_cast<uintptr_t>(begin) + size, std::memory_order_relaxed);
        s.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
        return i;
    }
    return -1;
}

void forget(int slot) {
    if (slot < 0) return;
    std::lock_guard<std::mutex> lock(claim);
    slots[slot].begin.store(0, std::memory_order_release);
}

}  // namespace wpf::map_guard
