// Checks of what a model and the machine allow, before and around each image: initializers holding NaN or
// inf (read from the ONNX file's protobuf wire format, no protobuf library), the memory this process may
// use, and the memory an image needs with an export (the same estimate as export/runtime.py).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "model_info.hpp"

namespace softlabelseg {

// Names of the float, float16, bfloat16 and double initializers of the ONNX file at `path` (and tensor
// attributes of its nodes, subgraphs included) holding NaN or inf. Tensors stored in external data files
// are not read (exports of this project keep every weight in the .onnx file). Throws on an unreadable or
// malformed file.
std::vector<std::string> nonfinite_initializers(const std::string& path);

// Bytes this process may use: the lowest of the physical memory, the cgroup limit (v2 or v1) and the
// address-space ulimit (8 GiB when none can be read).
uint64_t available_memory();

// Estimated memory to segment an image of `original` size: two float32 copies of the graph's class
// scores (at the model input, or at the in-graph upsampling's size) plus 8 bytes per image pixel for the
// image, the labels and the overlay.
uint64_t estimate_peak_bytes(const cv::Size& original, const ModelInfo& info);

}  // namespace softlabelseg
