#include "ort.hpp"

#include <functional>

namespace softlabelseg::ort {
namespace {

std::string owned_string(OrtAllocator* allocator, char* text) {
  std::string out = text ? text : "";
  if (text) check(api().AllocatorFree(allocator, text));
  return out;
}

Declared describe(OrtTypeInfo* raw, std::string name) {
  Owned<OrtTypeInfo> info(raw);
  const OrtTensorTypeAndShapeInfo* tensor = nullptr;
  check(api().CastTypeInfoToTensorInfo(info.get(), &tensor));
  if (!tensor) throw std::runtime_error("graph value '" + name + "' is not a tensor");
  Declared d{std::move(name), ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED, {}};
  size_t rank = 0;
  check(api().GetTensorElementType(tensor, &d.type));
  check(api().GetDimensionsCount(tensor, &rank));
  d.shape.resize(rank);
  check(api().GetDimensions(tensor, d.shape.data(), rank));
  return d;
}

}  // namespace

const OrtApi& api() {
  static const OrtApi* table = [] {
    const OrtApi* t = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (!t)
      throw std::runtime_error("the ONNX Runtime library (" + std::string(OrtGetApiBase()->GetVersionString()) +
                               ") is older than the C API headers the runner was built with (API " +
                               std::to_string(ORT_API_VERSION) + "): use onnxruntime >= 1." +
                               std::to_string(ORT_API_VERSION));
    return t;
  }();
  return *table;
}

void check(OrtStatus* status) {
  if (!status) return;
  std::string message = api().GetErrorMessage(status);
  api().ReleaseStatus(status);
  throw std::runtime_error(message);
}

std::string Session::runtime_version() { return OrtGetApiBase()->GetVersionString(); }

Session::Session(const std::string& model_path, int threads) {
  OrtEnv* env = nullptr;
  check(api().CreateEnv(ORT_LOGGING_LEVEL_ERROR, "softlabelseg_infer", &env));
  env_.reset(env);
  OrtSessionOptions* raw_options = nullptr;
  check(api().CreateSessionOptions(&raw_options));
  Owned<OrtSessionOptions> options(raw_options);
  check(api().SetSessionGraphOptimizationLevel(options.get(), ORT_ENABLE_ALL));
  if (threads > 0) check(api().SetIntraOpNumThreads(options.get(), threads));
  check(api().SetInterOpNumThreads(options.get(), 1));
  OrtSession* session = nullptr;
  try {
    check(api().CreateSession(env_.get(), model_path.c_str(), options.get(), &session));
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load model '" + model_path + "' with ONNX Runtime: " + e.what());
  }
  session_.reset(session);
  OrtMemoryInfo* memory = nullptr;
  check(api().CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memory));
  memory_.reset(memory);

  OrtAllocator* allocator = nullptr;
  check(api().GetAllocatorWithDefaultOptions(&allocator));
  size_t inputs = 0, outputs = 0;
  check(api().SessionGetInputCount(session_.get(), &inputs));
  check(api().SessionGetOutputCount(session_.get(), &outputs));
  if (inputs != 1 || outputs < 1)
    throw std::runtime_error("'" + model_path + "' has " + std::to_string(inputs) + " inputs and " +
                             std::to_string(outputs) + " outputs; an exported segmenter has one image input");
  char* name = nullptr;
  OrtTypeInfo* info = nullptr;
  check(api().SessionGetInputName(session_.get(), 0, allocator, &name));
  std::string input_name = owned_string(allocator, name);
  check(api().SessionGetInputTypeInfo(session_.get(), 0, &info));
  input_ = describe(info, input_name);
  check(api().SessionGetOutputName(session_.get(), 0, allocator, &name));
  std::string output_name = owned_string(allocator, name);
  check(api().SessionGetOutputTypeInfo(session_.get(), 0, &info));
  output_ = describe(info, output_name);
}

std::map<std::string, std::string> Session::metadata() const {
  OrtAllocator* allocator = nullptr;
  check(api().GetAllocatorWithDefaultOptions(&allocator));
  OrtModelMetadata* raw = nullptr;
  check(api().SessionGetModelMetadata(session_.get(), &raw));
  Owned<OrtModelMetadata> meta(raw);
  char** keys = nullptr;
  int64_t count = 0;
  check(api().ModelMetadataGetCustomMetadataMapKeys(meta.get(), allocator, &keys, &count));
  std::map<std::string, std::string> props;
  for (int64_t i = 0; i < count; ++i) {
    std::string key = owned_string(allocator, keys[i]);
    char* value = nullptr;
    check(api().ModelMetadataLookupCustomMetadataMap(meta.get(), allocator, key.c_str(), &value));
    props[key] = owned_string(allocator, value);
  }
  if (keys) check(api().AllocatorFree(allocator, keys));
  return props;
}

Tensor Session::run(const uint8_t* data, const std::vector<int64_t>& shape) {
  size_t bytes = 1;
  for (int64_t d : shape) bytes *= size_t(d);
  OrtValue* raw_input = nullptr;
  check(api().CreateTensorWithDataAsOrtValue(memory_.get(), const_cast<uint8_t*>(data), bytes, shape.data(),
                                             shape.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, &raw_input));
  Owned<OrtValue> input(raw_input);
  const char* input_names[] = {input_.name.c_str()};
  const char* output_names[] = {output_.name.c_str()};
  const OrtValue* inputs[] = {input.get()};
  OrtValue* raw_output = nullptr;
  check(api().Run(session_.get(), nullptr, input_names, inputs, 1, output_names, 1, &raw_output));
  Tensor out;
  out.value.reset(raw_output);
  OrtTensorTypeAndShapeInfo* raw_info = nullptr;
  check(api().GetTensorTypeAndShape(out.value.get(), &raw_info));
  Owned<OrtTensorTypeAndShapeInfo> info(raw_info);
  size_t rank = 0;
  check(api().GetTensorElementType(info.get(), &out.type));
  check(api().GetDimensionsCount(info.get(), &rank));
  out.shape.resize(rank);
  check(api().GetDimensions(info.get(), out.shape.data(), rank));
  void* ptr = nullptr;
  check(api().GetTensorMutableData(out.value.get(), &ptr));
  out.data = ptr;
  return out;
}

}  // namespace softlabelseg::ort
