#include "mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "errors.hpp"
#include "map_guard.hpp"

namespace wpf {

namespace {

uint64_t page_size() {
    static const uint64_t p = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    return p;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) {
    // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; it is refused below.
    // It changes nothing for a regular file, which is all that gets mapped.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw FileAccessError(path + ": cannot open: " + std::strerror(errno));
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw FileAccessError(path + ": not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw FileAccessError(path + ": cannot memory-map: " + std::strerror(err));
        }
        data_ = static_cast<uint8_t*>(p);
        guard_ = map_guard::remember(data_, size_, path);
    }
    ::close(fd);  // the mapping keeps the file alive
}

MappedFile::MappedFile(const uint8_t* data, uint64_t size)
    : data_(const_cast<uint8_t*>(data)), size_(size), borrowed_(true) {}

MappedFile::~MappedFile() {
    if (borrowed_) return;
    map_guard::forget(guard_);
    if (data_) ::munmap(data_, size_);
}

void MappedFile::will_need(uint64_t offset, uint64_t len) const {
    if (borrowed_ || !data_ || len == 0 || offset >= size_) return;
    const uint64_t start = offset / page_size() * page_size();
    const uint64_t stop = std::min(size_, offset + len);
    ::madvise(data_ + start, stop - start, MADV_WILLNEED);
    ::madvise(data_ + start, stop - start, MADV_SEQUENTIAL);
}

void MappedFile::release(uint64_t offset, uint64_t len) const {
    if (borrowed_ || !data_ || len == 0 || offset >= size_) return;
    // Whole pages only: a neighbour's partial page is left resident rather than re-read.
    const uint64_t start = (offset + page_size() - 1) / page_size() * page_size();
    const uint64_t stop = std::min(size_, offset + len) / page_size() * page_size();
    if (stop > start) ::madvise(data_ + start, stop - start, MADV_DONTNEED);
}

}  // namespace wpf
