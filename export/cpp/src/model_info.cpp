#include "model_info.hpp"

#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace softlabelseg {
namespace {
const std::string kPrefix = "softlabelseg.";
const int kFormatVersion = 1;  // the newest metadata layout this runner reads (export/metadata.py)

// Strings of a JSON array of strings ("[\"a\", \"b\"]" -> 2); escaped quotes stay inside their string.
size_t json_string_count(const std::string& json) {
  size_t count = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    if (in_string && json[i] == '\\') {
      ++i;
    } else if (json[i] == '"') {
      if (!in_string) ++count;
      in_string = !in_string;
    }
  }
  return count;
}

// Three finite numbers and nothing else (a JSON [a, b, c]); std > 0 when `positive`.
bool three_numbers(const std::string& json, bool positive) {
  if (json.find('"') != std::string::npos) return false;
  auto n = json_numbers(json);
  if (n.size() != 3) return false;
  for (double v : n)
    if (!std::isfinite(v) || (positive && !(v > 0))) return false;
  return true;
}
}  // namespace

std::vector<double> json_numbers(const std::string& json) {
  std::vector<double> out;
  const char* p = json.c_str();
  bool in_string = false;
  while (*p) {
    if (*p == '"') {
      in_string = !in_string;
      ++p;
    } else if (!in_string && ((*p >= '0' && *p <= '9') || *p == '-' || *p == '.')) {
      char* end = nullptr;
      double v = std::strtod(p, &end);
      if (end == p) { ++p; continue; }
      out.push_back(v);
      p = end;
    } else {
      ++p;
    }
  }
  return out;
}

std::string json_string(const std::string& json) {
  auto first = json.find('"');
  auto last = json.rfind('"');
  if (first == std::string::npos || last == first) return "";
  return json.substr(first + 1, last - first - 1);
}

ModelInfo parse_model_info(const std::map<std::string, std::string>& props) {
  auto find = [&](const std::string& key) -> const std::string* {
    auto it = props.find(kPrefix + key);
    return it == props.end() ? nullptr : &it->second;
  };
  for (const char* key : {"class_names", "class_colors"})
    if (!find(key))
      throw std::runtime_error("ONNX metadata lacks '" + kPrefix + key +
                               "': the file was not written by softlabelseg_export (re-export it with "
                               "export/export_onnx.py)");
  if (auto v = find("format_version")) {
    auto n = json_numbers(*v);
    if (n.size() != 1 || n[0] < 1 || n[0] > kFormatVersion || n[0] != std::floor(n[0]))
      throw std::runtime_error("metadata 'softlabelseg.format_version' is " + *v + ": this runner reads 1 to " +
                               std::to_string(kFormatVersion) + "; rebuild it from this release or export again");
  }
  ModelInfo info;
  auto colors = json_numbers(*find("class_colors"));
  if (colors.empty() || colors.size() % 3)
    throw std::runtime_error("metadata 'softlabelseg.class_colors' is not a list of RGB triples");
  for (size_t i = 0; i < colors.size(); i += 3) {
    for (size_t k = i; k < i + 3; ++k)
      if (!(colors[k] >= 0 && colors[k] <= 255 && colors[k] == std::floor(colors[k])))
        throw std::runtime_error("metadata 'softlabelseg.class_colors' holds " + std::to_string(colors[k]) +
                                 ": colours are RGB integers 0..255");
    info.colors.push_back({int(colors[i]), int(colors[i + 1]), int(colors[i + 2])});
  }
  size_t names = json_string_count(*find("class_names"));
  if (names != info.colors.size())
    throw std::runtime_error("metadata names " + std::to_string(names) + " classes ('softlabelseg.class_names') but " +
                             std::to_string(info.colors.size()) +
                             " colours ('softlabelseg.class_colors'): re-export the model with export/export_onnx.py");
  for (const char* key : {"pixel_mean", "pixel_std"})
    if (auto v = find(key))
      if (!three_numbers(*v, std::string(key) == "pixel_std"))
        throw std::runtime_error(std::string("metadata 'softlabelseg.") + key + "' is " + *v +
                                 ": expected three finite numbers; re-export the model with export/export_onnx.py");
  if (auto v = find("resolution_factor")) {
    auto n = json_numbers(*v);
    if (n.size() != 1 || !(n[0] > 0))
      throw std::runtime_error("metadata 'softlabelseg.resolution_factor' must be a number > 0, got " + *v);
    info.resolution_factor = n[0];
  }
  auto pair = [&](const char* key, int& h, int& w) {
    if (auto v = find(key)) {
      auto n = json_numbers(*v);
      if (n.size() == 2) h = int(n[0]), w = int(n[1]);
      else if (!n.empty()) throw std::runtime_error(std::string("metadata 'softlabelseg.") + key + "' is not [h, w]");
    }
  };
  pair("input_size", info.input_h, info.input_w);
  pair("output_size", info.output_h, info.output_w);
  if (auto v = find("output_scale")) {
    auto n = json_numbers(*v);
    if (n.size() == 1 && n[0] > 0) info.output_scale = n[0];
  }
  if (auto v = find("output_kind")) info.output_kind = json_string(*v);
  if (info.output_kind != "logits" && info.output_kind != "probs" && info.output_kind != "labels")
    throw std::runtime_error("metadata 'softlabelseg.output_kind' must be logits, probs or labels, got '" +
                             info.output_kind + "'");
  const std::string* flags = find("image_cv2_flags");
  if (!flags)
    throw std::runtime_error("ONNX metadata lacks '" + kPrefix + "image_cv2_flags' (the OpenCV filters of the "
                             "image resize): re-export the model with export/export_onnx.py");
  auto n = json_numbers(*flags);
  if (n.size() != 2)
    throw std::runtime_error("metadata 'softlabelseg.image_cv2_flags' must be two OpenCV interpolation flags, got " +
                             *flags);
  info.image_flag = int(n[0]), info.image_shrink_flag = int(n[1]);
  const std::string* in_float = find("image_resize_float32");
  if (!in_float || (*in_float != "true" && *in_float != "false"))
    throw std::runtime_error("ONNX metadata 'softlabelseg.image_resize_float32' is " +
                             (in_float ? *in_float : std::string("missing")) +
                             ": expected true or false (whether the image resize runs in float32); re-export "
                             "the model with export/export_onnx.py");
  info.image_float32 = *in_float == "true";
  if (auto v = find("align_corners")) info.align_corners = v->find("true") != std::string::npos;
  if (auto v = find("resize_in_graph")) info.resize_in_graph = v->find("true") != std::string::npos;
  if (auto v = find("ignore_value")) {
    auto n = json_numbers(*v);
    if (n.size() == 1) info.ignore_value = int(n[0]);
  }
  return info;
}

}  // namespace softlabelseg
