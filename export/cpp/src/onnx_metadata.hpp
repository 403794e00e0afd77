// Reads the softlabelseg.* metadata_props of an ONNX file without protobuf or ONNX libraries:
// a ModelProto is scanned field by field (protobuf wire format) and the graph is skipped unread.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace softlabelseg {

// All metadata_props (key -> JSON text) of the ONNX model at `path`; throws std::runtime_error.
std::map<std::string, std::string> read_onnx_metadata(const std::string& path);

// Every number in a JSON text, in order ("[[1, 2], [3]]" -> {1, 2, 3}; "null" -> {}).
std::vector<double> json_numbers(const std::string& json);

// A JSON string value without its quotes (no escapes needed for our keys); "null" -> "".
std::string json_string(const std::string& json);

// What the runner needs from the metadata, parsed and checked.
struct ModelInfo {
  std::vector<std::vector<int>> colors;  // RGB per class
  double resolution_factor = 1.0;
  int input_h = 0, input_w = 0;          // 0: dynamic, use resolution_factor
  int output_h = 0, output_w = 0;        // in-graph upsampling target, 0 when none
  std::string output_kind = "logits";
  std::string image_resize = "cv2:linear";
  bool image_antialias = false;
  bool align_corners = false;
  int ignore_value = 255;
};

ModelInfo parse_model_info(const std::map<std::string, std::string>& props);

}  // namespace softlabelseg
