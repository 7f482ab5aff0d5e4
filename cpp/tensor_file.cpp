#include "tensor_file.hpp"

#include "errors.hpp"

namespace wpf {

void TensorFile::fail(const std::string& tensor, const std::string& rule) const {
    throw FormatError(path_ + (tensor.empty() ? "" : ": tensor '" + tensor + "'") + ": " + rule);
}

void TensorFile::add_tensor(TensorInfo t) {
    if (!by_name_.emplace(t.name, tensors_.size()).second) fail(t.name, "appears twice in the tensor table");
    tensors_.push_back(std::move(t));
}

const TensorInfo& TensorFile::tensor(const std::string& name) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) throw FormatError(path_ + ": no tensor named '" + name + "'");
    return tensors_[it->second];
}

}  // namespace wpf
