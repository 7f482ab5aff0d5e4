// Test helpers: temporary files holding bytes the test writes.
#pragma once
#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace wpf::test {

// A file in the temporary directory, removed when the object goes.
class TempFile {
public:
    explicit TempFile(const std::string& bytes) {
        char name[] = "/tmp/wpf-native-XXXXXX";
        const int fd = ::mkstemp(name);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        ::close(fd);
        path_ = name;
        std::ofstream(path_, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    ~TempFile() { std::remove(path_.c_str()); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

template <typename T>
std::string raw(const T& value) {
    return std::string(reinterpret_cast<const char*>(&value), sizeof(T));
}

// A safetensors file: the 8-byte little-endian header length, the JSON header, the data.
inline std::string safetensors(const std::string& header, const std::string& data) {
    return raw(static_cast<uint64_t>(header.size())) + header + data;
}

inline std::string floats(const std::vector<float>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace wpf::test
