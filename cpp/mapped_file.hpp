// Memory-mapped files: how the engine reads a checkpoint's bytes.
#pragma once
#include <cstdint>
#include <string>

namespace wpf {

// A read-only memory map of a whole file. Pages are advised in and released as work moves on,
// so a file larger than RAM streams through with bounded resident memory. Or a borrowed region
// of memory that someone else owns (an in-memory model's tensor): read in place, never advised
// or released (dropping anonymous pages would zero them), never unmapped.
class MappedFile {
public:
    explicit MappedFile(const std::string& path);
    MappedFile(const uint8_t* data, uint64_t size);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    // Ask the kernel to read [offset, offset + len) ahead, sequentially.
    void will_need(uint64_t offset, uint64_t len) const;
    // Drop [offset, offset + len) from this process's resident set; the file is unchanged.
    void release(uint64_t offset, uint64_t len) const;

private:
    uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    int guard_ = -1;  // map_guard slot: a SIGBUS in this map names the file
    bool borrowed_ = false;
};

}  // namespace wpf
