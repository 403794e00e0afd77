// A small RAII layer over ONNX Runtime's C API: owned handles, errors as exceptions, and a Session that
// runs one uint8 image tensor and hands back its first output.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <onnxruntime_c_api.h>

namespace softlabelseg::ort {

// The runtime's function table for the headers' API version; throws when the library is older.
const OrtApi& api();

// Throws std::runtime_error with the runtime's message (and releases the status) when `status` is set.
void check(OrtStatus* status);

template <typename T>
struct Releaser;
#define SOFTLABELSEG_ORT_RELEASER(Type) \
  template <>                           \
  struct Releaser<Ort##Type> {          \
    void operator()(Ort##Type* p) const { if (p) api().Release##Type(p); } \
  };
SOFTLABELSEG_ORT_RELEASER(Env)
SOFTLABELSEG_ORT_RELEASER(SessionOptions)
SOFTLABELSEG_ORT_RELEASER(Session)
SOFTLABELSEG_ORT_RELEASER(MemoryInfo)
SOFTLABELSEG_ORT_RELEASER(Value)
SOFTLABELSEG_ORT_RELEASER(TypeInfo)
SOFTLABELSEG_ORT_RELEASER(TensorTypeAndShapeInfo)
SOFTLABELSEG_ORT_RELEASER(ModelMetadata)
#undef SOFTLABELSEG_ORT_RELEASER

template <typename T>
using Owned = std::unique_ptr<T, Releaser<T>>;

// A tensor the runtime returned: element type, shape and data stay valid while the object lives.
struct Tensor {
  Owned<OrtValue> value;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Shape of a graph input or output as declared in the file; -1 for a symbolic dimension.
struct Declared {
  std::string name;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> shape;
};

class Session {
 public:
  // Loads `model_path` on the CPU provider with all graph optimisations; `threads` > 0 fixes the
  // intra-op thread count (0: the runtime's default, one per physical core).
  Session(const std::string& model_path, int threads);

  // Every custom metadata entry (metadata_props) of the model: key -> value.
  std::map<std::string, std::string> metadata() const;

  const Declared& input() const { return input_; }
  const Declared& output() const { return output_; }

  // Runs the graph on a uint8 tensor of `shape` (data is borrowed, not copied); returns output 0.
  Tensor run(const uint8_t* data, const std::vector<int64_t>& shape);

  static std::string runtime_version();

 private:
  Owned<OrtEnv> env_;
  Owned<OrtSession> session_;
  Owned<OrtMemoryInfo> memory_;
  Declared input_, output_;
};

}  // namespace softlabelseg::ort
