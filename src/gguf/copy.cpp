#include "gguf/copy.h"

#include <string>

namespace toy::gguf {

void copy_metadata(const File& from, Writer& to) {
  for (size_t i = 0; i < from.metadata_count(); ++i) {
    ValueRef value = from.metadata(i);
    to.set(std::string(value.key()), value.to_value());
  }
}

void copy_tensors(const File& from, Writer& to) {
  for (const TensorInfo& info : from.tensors()) {
    std::vector<int64_t> ne(info.ne.begin(), info.ne.begin() + info.n_dims);
    to.add_tensor(std::string(info.name), info.type, std::move(ne), from.tensor(info).data);
  }
}

}  // namespace toy::gguf
