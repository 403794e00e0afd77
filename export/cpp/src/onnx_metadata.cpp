#include "onnx_metadata.hpp"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace softlabelseg {
namespace {

constexpr int kMetadataProps = 14;  // ModelProto.metadata_props (StringStringEntryProto)
const std::string kPrefix = "softlabelseg.";

uint64_t read_varint(std::istream& in) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    int byte = in.get();
    if (byte == EOF) throw std::runtime_error("truncated ONNX file (varint)");
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return value;
  }
  throw std::runtime_error("malformed varint in ONNX file");
}

uint64_t read_varint(const std::string& s, size_t& pos) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64 && pos < s.size(); shift += 7) {
    auto byte = static_cast<unsigned char>(s[pos++]);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return value;
  }
  throw std::runtime_error("malformed varint in ONNX metadata entry");
}

// StringStringEntryProto: key = 1, value = 2.
std::pair<std::string, std::string> parse_entry(const std::string& bytes) {
  std::pair<std::string, std::string> kv;
  size_t pos = 0;
  while (pos < bytes.size()) {
    uint64_t tag = read_varint(bytes, pos);
    if ((tag & 7) != 2) throw std::runtime_error("unexpected wire type in metadata entry");
    uint64_t len = read_varint(bytes, pos);
    if (pos + len > bytes.size()) throw std::runtime_error("truncated metadata entry");
    std::string field = bytes.substr(pos, len);
    pos += len;
    if ((tag >> 3) == 1) kv.first = field;
    if ((tag >> 3) == 2) kv.second = field;
  }
  return kv;
}

}  // namespace

std::map<std::string, std::string> read_onnx_metadata(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open model file '" + path + "'");
  std::map<std::string, std::string> props;
  while (in.peek() != EOF) {
    uint64_t tag = read_varint(in);
    switch (tag & 7) {
      case 0: read_varint(in); break;
      case 1: in.seekg(8, std::ios::cur); break;
      case 5: in.seekg(4, std::ios::cur); break;
      case 2: {
        uint64_t len = read_varint(in);
        if ((tag >> 3) == kMetadataProps) {
          std::string bytes(len, '\0');
          if (!in.read(bytes.data(), static_cast<std::streamsize>(len)))
            throw std::runtime_error("truncated ONNX file (metadata)");
          props.insert(parse_entry(bytes));
        } else {
          in.seekg(static_cast<std::streamoff>(len), std::ios::cur);
        }
        break;
      }
      default: throw std::runtime_error("'" + path + "' is not an ONNX model (bad protobuf wire type)");
    }
    if (!in) throw std::runtime_error("truncated ONNX file '" + path + "'");
  }
  return props;
}

std::vector<double> json_numbers(const std::string& json) {
  std::vector<double> out;
  const char* p = json.c_str();
  while (*p) {
    if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '.') {
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
  auto get = [&](const std::string& key) -> const std::string& {
    auto it = props.find(kPrefix + key);
    if (it == props.end())
      throw std::runtime_error("ONNX metadata lacks '" + kPrefix + key +
                               "': export the model with export/export_onnx.py");
    return it->second;
  };
  ModelInfo info;
  auto colors = json_numbers(get("class_colors"));
  if (colors.size() % 3) throw std::runtime_error("class_colors is not a list of RGB triples");
  for (size_t i = 0; i < colors.size(); i += 3)
    info.colors.push_back({int(colors[i]), int(colors[i + 1]), int(colors[i + 2])});
  info.resolution_factor = json_numbers(get("resolution_factor")).at(0);
  auto input = json_numbers(get("input_size"));
  if (input.size() == 2) info.input_h = int(input[0]), info.input_w = int(input[1]);
  auto output = json_numbers(get("output_size"));
  if (output.size() == 2) info.output_h = int(output[0]), info.output_w = int(output[1]);
  info.output_kind = json_string(get("output_kind"));
  info.image_resize = json_string(get("image_resize"));
  info.align_corners = get("align_corners").find("true") != std::string::npos;
  auto antialias = props.find(kPrefix + "image_antialias");
  info.image_antialias = antialias != props.end() && antialias->second.find("true") != std::string::npos;
  info.ignore_value = int(json_numbers(get("ignore_value")).at(0));
  return info;
}

}  // namespace softlabelseg
