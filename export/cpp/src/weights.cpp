#include "weights.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "imaging.hpp"

namespace softlabelseg {
namespace {

// A span of protobuf wire-format bytes: varints, tags and length-delimited fields.
struct Wire {
  const uint8_t* p;
  const uint8_t* end;

  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) break;
      uint8_t b = *p++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("malformed varint");
  }
  Wire take(uint64_t n) {
    if (n > uint64_t(end - p)) throw std::runtime_error("truncated field");
    Wire w{p, p + n};
    p += n;
    return w;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1: take(8); break;
      case 2: take(varint()); break;
      case 5: take(4); break;
      default: throw std::runtime_error("unknown wire type " + std::to_string(wire_type));
    }
  }
};

enum DataType { kFloat = 1, kFloat16 = 10, kDouble = 11, kBFloat16 = 16 };

template <typename Bits>
Bits load(const uint8_t* p) {
  Bits v;
  std::memcpy(&v, p, sizeof v);  // little-endian, as ONNX stores raw_data
  return v;
}

bool nonfinite_bits(int type, uint64_t bits) {
  switch (type) {
    case kFloat: return (bits & 0x7f800000u) == 0x7f800000u;
    case kFloat16: return (bits & 0x7c00u) == 0x7c00u;
    case kBFloat16: return (bits & 0x7f80u) == 0x7f80u;
    case kDouble: return (bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
    default: return false;
  }
}

size_t element_bytes(int type) { return type == kDouble ? 8 : (type == kFloat ? 4 : 2); }

// TensorProto: data_type (2), float_data (4), int32_data (5, float16 / bfloat16 bits), name (8),
// raw_data (9), double_data (10), data_location (14, 1 = external).
bool tensor_nonfinite(Wire w, std::string& name) {
  int type = 0;
  bool bad_float = false, bad_double = false;
  std::vector<Wire> raw, halves;
  std::vector<uint64_t> loose_halves;
  while (!w.done()) {
    uint64_t tag = w.varint();
    int field = int(tag >> 3), wt = int(tag & 7);
    if (field == 2 && wt == 0) type = int(w.varint());
    else if (field == 8 && wt == 2) { Wire s = w.take(w.varint()); name.assign(s.p, s.end); }
    else if (field == 9 && wt == 2) raw.push_back(w.take(w.varint()));
    else if (field == 4 && wt == 2) {
      Wire s = w.take(w.varint());
      for (; s.end - s.p >= 4; s.p += 4) bad_float |= nonfinite_bits(kFloat, load<uint32_t>(s.p));
    } else if (field == 4 && wt == 5) bad_float |= nonfinite_bits(kFloat, load<uint32_t>(w.take(4).p));
    else if (field == 10 && wt == 2) {
      Wire s = w.take(w.varint());
      for (; s.end - s.p >= 8; s.p += 8) bad_double |= nonfinite_bits(kDouble, load<uint64_t>(s.p));
    } else if (field == 10 && wt == 1) bad_double |= nonfinite_bits(kDouble, load<uint64_t>(w.take(8).p));
    else if (field == 5 && wt == 2) halves.push_back(w.take(w.varint()));
    else if (field == 5 && wt == 0) loose_halves.push_back(w.varint());
    else w.skip(wt);
  }
  if (type != kFloat && type != kFloat16 && type != kBFloat16 && type != kDouble) return false;
  if (bad_float || bad_double) return true;
  const size_t step = element_bytes(type);
  for (const Wire& r : raw)
    for (const uint8_t* p = r.p; r.end - p >= std::ptrdiff_t(step); p += step) {
      uint64_t bits = step == 8 ? load<uint64_t>(p) : step == 4 ? load<uint32_t>(p) : load<uint16_t>(p);
      if (nonfinite_bits(type, bits)) return true;
    }
  if (type == kFloat16 || type == kBFloat16) {
    for (Wire h : halves)
      while (!h.done())
        if (nonfinite_bits(type, h.varint())) return true;
    for (uint64_t bits : loose_halves)
      if (nonfinite_bits(type, bits)) return true;
  }
  return false;
}

void scan_graph(Wire graph, std::vector<std::string>& bad, int depth);

// AttributeProto: t (5), g (6), tensors (10), graphs (11).
void scan_attribute(Wire w, const std::string& label, std::vector<std::string>& bad, int depth) {
  while (!w.done()) {
    uint64_t tag = w.varint();
    int field = int(tag >> 3), wt = int(tag & 7);
    if (wt == 2 && (field == 5 || field == 10)) {
      std::string ignored;
      if (tensor_nonfinite(w.take(w.varint()), ignored)) bad.push_back(label);
    } else if (wt == 2 && (field == 6 || field == 11)) {
      scan_graph(w.take(w.varint()), bad, depth + 1);
    } else {
      w.skip(wt);
    }
  }
}

// NodeProto: output (2), name (3), op_type (4), attribute (5).
void scan_node(Wire w, std::vector<std::string>& bad, int depth) {
  std::string output, name, op;
  std::vector<Wire> attributes;
  while (!w.done()) {
    uint64_t tag = w.varint();
    int field = int(tag >> 3), wt = int(tag & 7);
    if (wt == 2 && field >= 2 && field <= 5) {
      Wire s = w.take(w.varint());
      if (field == 2 && output.empty()) output.assign(s.p, s.end);
      else if (field == 3) name.assign(s.p, s.end);
      else if (field == 4) op.assign(s.p, s.end);
      else if (field == 5) attributes.push_back(s);
    } else {
      w.skip(wt);
    }
  }
  const std::string label = (name.empty() ? output : name) + " (" + op + " attribute)";
  for (const Wire& a : attributes) scan_attribute(a, label, bad, depth);
}

// GraphProto: node (1), initializer (5).
void scan_graph(Wire w, std::vector<std::string>& bad, int depth) {
  if (depth > 64) throw std::runtime_error("subgraphs nested too deeply");
  while (!w.done()) {
    uint64_t tag = w.varint();
    int field = int(tag >> 3), wt = int(tag & 7);
    if (field == 5 && wt == 2) {
      std::string name;
      if (tensor_nonfinite(w.take(w.varint()), name)) bad.push_back(name);
    } else if (field == 1 && wt == 2) {
      scan_node(w.take(w.varint()), bad, depth);
    } else {
      w.skip(wt);
    }
  }
}

}  // namespace

std::vector<std::string> nonfinite_initializers(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  Wire model{data, data + bytes.size()};
  std::vector<std::string> bad;
  try {
    while (!model.done()) {  // ModelProto: graph (7)
      uint64_t tag = model.varint();
      if ((tag >> 3) == 7 && (tag & 7) == 2) scan_graph(model.take(model.varint()), bad, 0);
      else model.skip(int(tag & 7));
    }
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("'" + path + "' is not a readable ONNX model (" + e.what() +
                             "): export it again with export/export_onnx.py");
  }
  return bad;
}

uint64_t available_memory() {
  std::vector<uint64_t> limits;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) limits.push_back(uint64_t(pages) * uint64_t(page));
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream f(path);
    std::string text;
    if (f >> text && !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return c >= '0' && c <= '9'; }))
      limits.push_back(std::stoull(text));
  }
  struct rlimit rl {};
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limits.push_back(uint64_t(rl.rlim_cur));
  limits.erase(std::remove(limits.begin(), limits.end(), 0u), limits.end());
  return limits.empty() ? (uint64_t(8) << 30) : *std::min_element(limits.begin(), limits.end());
}

uint64_t estimate_peak_bytes(const cv::Size& original, const ModelInfo& info) {
  uint64_t pixels;
  if (info.output_h > 0) {
    pixels = uint64_t(info.output_h) * uint64_t(info.output_w);
  } else {
    cv::Size in = input_size_for(original, info);
    if (info.output_scale > 0) {
      std::fesetround(FE_TONEAREST);
      pixels = uint64_t(std::nearbyint(in.height * info.output_scale)) *
               uint64_t(std::nearbyint(in.width * info.output_scale));
    } else {
      pixels = uint64_t(in.height) * uint64_t(in.width);
    }
  }
  return 2 * 4 * uint64_t(info.num_classes()) * pixels + 8 * uint64_t(original.area());
}

}  // namespace softlabelseg
