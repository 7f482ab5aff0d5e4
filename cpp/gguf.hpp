// The GGUF format (llama.cpp), versions 2 and 3, enforced in one place: a memory-mapped file whose
// header, metadata and tensor table have been checked against every rule before any tensor byte
// is touched. Metadata arrays are walked and checked; of the string arrays only the vocabulary
// (tokenizer.ggml.tokens, whose anchor tokens the lineage probes read) is kept.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor_file.hpp"

namespace wpf {

// One metadata value. Arrays keep their element type and count; numeric arrays of at most
// kMaxKeptArray elements also keep their values (per-layer head counts, for example).
struct GgufValue {
    enum class Kind : uint8_t { UInt, Int, Float, Bool, String, Array };
    Kind kind = Kind::UInt;
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    bool b = false;
    std::string s;
    uint32_t array_type = 0;  // GGUF value type of the elements
    uint64_t array_count = 0;
    std::vector<double> numbers;       // numeric arrays up to kMaxKeptArray elements
    std::vector<std::string> strings;  // the vocabulary's tokens (kVocabularyKey)
};

class GgufFile : public TensorFile {
public:
    // Throws FormatError naming the file, the key or tensor, and the broken rule.
    explicit GgufFile(const std::string& path);

    const char* format() const override { return "gguf"; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    const std::map<std::string, GgufValue>& metadata() const { return metadata_; }

    static constexpr uint64_t kMaxKeptArray = 1 << 16;
    static constexpr const char* kVocabularyKey = "tokenizer.ggml.tokens";
    static constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

private:
    class Cursor;
    void read_metadata(Cursor& c, uint64_t count);
    GgufValue read_value(Cursor& c, uint32_t type, const std::string& key, int depth);
    void read_tensor_table(Cursor& c, uint64_t count);

    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    std::map<std::string, GgufValue> metadata_;
};

}  // namespace wpf
