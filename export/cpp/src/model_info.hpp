// What the runner needs from an export's softlabelseg.* metadata (export/metadata.py writes it: one
// JSON value per key), parsed and checked the way the Python runner's ExportMetadata.from_props does.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace softlabelseg {

struct ModelInfo {
  std::vector<std::vector<int>> colors;  // RGB per class
  double resolution_factor = 1.0;
  int input_h = 0, input_w = 0;          // 0: dynamic, the size follows resolution_factor
  int output_h = 0, output_w = 0;        // fixed in-graph upsampling target, 0 when none
  double output_scale = 0;               // in-graph upsampling factor of dynamic graphs, 0 when none
  std::string output_kind = "logits";    // logits | probs | labels
  int image_flag = -1, image_shrink_flag = -1;  // OpenCV interpolation: any size, both sides shrinking
  bool image_float32 = false;            // resize in float32 and round half to even (the mode's library does)
  bool resize_in_graph = false;          // the graph takes the full image and resizes it itself
  bool align_corners = false;
  int ignore_value = 255;
  int num_classes() const { return int(colors.size()); }
};

// Every number in a JSON text, in order ("[[1, 2], [3]]" -> {1, 2, 3}; "null" -> {}).
std::vector<double> json_numbers(const std::string& json);

// A JSON string value without its quotes (our values need no escapes); "null" -> "".
std::string json_string(const std::string& json);

// Parses the metadata map (key -> JSON); throws std::runtime_error naming a missing or bad key.
ModelInfo parse_model_info(const std::map<std::string, std::string>& props);

}  // namespace softlabelseg
