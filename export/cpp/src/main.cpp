// softlabelseg_infer: the serving pipeline of export/infer_onnx.py in C++ on ONNX Runtime's C API.
//
//   softlabelseg_infer --model model.onnx --input <image or folder> --output <folder> [--alpha 0.5]
//                      [--threads N] [--max-memory-gb G]
//
// For each image: RGB -> resize by the model's resolution factor with the training filter -> graph
// (uint8 NCHW in) -> bilinear upsampling of the scores to the original size (PyTorch geometry, fused
// with the argmax) -> <stem>_labels.png (train ids) and <stem>_overlay.png, under the same relative
// sub-folder as the input, each written atomically. Refused before any image (exit status 2): a model
// whose initializers hold NaN or inf, an output folder that is the input folder or inside it. An image
// that fails (unreadable, over the memory budget, NaN or inf scores, a runtime error) is reported and
// skipped; the exit status is then 1. Decoding (EXIF orientation applied), output names, the same-stem
// refusal and the palette are those of every folder tool of the project (folder.hpp, imaging.hpp).
//
// main: parse_args -> open_model (session, metadata, interface and weight checks) -> plan_outputs
// (folder.cpp: output folder, images, names) -> segment_all (the loop; segment_one per image).
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "folder.hpp"
#include "imaging.hpp"
#include "model_info.hpp"
#include "ort.hpp"
#include "weights.hpp"

namespace fs = std::filesystem;
using softlabelseg::ModelInfo;

namespace {

const char* kUsage =
    "usage: softlabelseg_infer --model model.onnx --input <image or folder> --output <folder>"
    " [--alpha 0.5] [--threads N] [--max-memory-gb G]\n";

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + (shape[i] < 0 ? "?" : std::to_string(shape[i]));
  return s + ")";
}

// Checks the declared graph interface against the metadata once, before any image is read.
void check_interface(const softlabelseg::ort::Session& session, const ModelInfo& info, const std::string& model) {
  const auto& in = session.input();
  if (in.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 || in.shape.size() != 4)
    throw std::runtime_error("'" + model + "' input '" + in.name + "' " + shape_text(in.shape) +
                             " is not a uint8 (N, 3, H, W) image: export it with export/export_onnx.py");
  if (!info.resize_in_graph && info.input_h > 0 && ((in.shape[2] > 0 && in.shape[2] != info.input_h) || (in.shape[3] > 0 && in.shape[3] != info.input_w)))
    throw std::runtime_error("'" + model + "' declares input " + shape_text(in.shape) +
                             " but its metadata says input_size " + std::to_string(info.input_h) + "x" +
                             std::to_string(info.input_w));
  const auto& out = session.output();
  bool labels = info.output_kind == "labels";
  auto want = labels ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  if (out.type != want || out.shape.size() != (labels ? 3u : 4u))
    throw std::runtime_error("'" + model + "' output '" + out.name + "' " + shape_text(out.shape) +
                             " does not hold " + (labels ? "uint8 (N, H, W) labels" : "float32 (N, C, H, W) scores") +
                             " as its metadata (output_kind '" + info.output_kind + "') says");
}

// uint8 (H, W) train-id labels for an RGB image.
cv::Mat segment(softlabelseg::ort::Session& session, const ModelInfo& info, const cv::Mat& rgb) {
  // a graph that resizes (metadata resize_in_graph) takes the full image
  cv::Mat small = info.resize_in_graph
                      ? rgb
                      : softlabelseg::resize_image(rgb, softlabelseg::input_size_for(rgb.size(), info), info);
  const int h = small.rows, w = small.cols;
  std::vector<uint8_t> blob(size_t(3) * h * w);  // HWC -> CHW
  std::vector<cv::Mat> planes;
  for (int c = 0; c < 3; ++c) planes.emplace_back(h, w, CV_8U, blob.data() + size_t(c) * h * w);
  cv::split(small, planes);
  auto out = session.run(blob.data(), {1, 3, h, w});
  const auto& s = out.shape;
  if (info.output_kind == "labels") {
    if (s.size() != 3 || s[0] != 1) throw std::runtime_error("graph returned labels of shape " + shape_text(s));
    cv::Mat labels(static_cast<int>(s[1]), static_cast<int>(s[2]), CV_8U, const_cast<void*>(out.data));
    return softlabelseg::resize_labels(labels, rgb.size()).clone();
  }
  if (s.size() != 4 || s[0] != 1 || out.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
    throw std::runtime_error("graph returned " + shape_text(s) + " scores; expected float32 (1, C, h, w)");
  const float* scores = static_cast<const float*>(out.data);
  const size_t count = size_t(s[1]) * size_t(s[2]) * size_t(s[3]);
  size_t bad = 0;
  for (size_t i = 0; i < count; ++i) bad += !std::isfinite(scores[i]);
  if (bad)
    throw std::runtime_error("the model returned " + std::to_string(bad) + " NaN or inf score(s) of " +
                             std::to_string(count) + ": its weights are broken or a float16 export overflows; " +
                             "export it again from a good checkpoint (without --fp16)");
  return softlabelseg::argmax_upsampled(static_cast<const float*>(out.data), int(s[1]), int(s[2]), int(s[3]),
                                        rgb.size(), info.align_corners);
}

std::string gigabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", double(bytes) / double(uint64_t(1) << 30));
  return text;
}

// Throws when an image of `size` needs more than `budget` bytes with this export (estimate_peak_bytes).
void check_size(const cv::Size& size, const ModelInfo& info, uint64_t budget) {
  uint64_t need = estimate_peak_bytes(size, info);
  if (need <= budget) return;
  std::string text = std::to_string(size.width) + "x" + std::to_string(size.height) + " image needs about " +
                     gigabytes(need) + " GB with this export (limit " + gigabytes(budget) +
                     " GB, --max-memory-gb)";
  if (info.output_h > 0 || info.output_scale > 0)
    text += ": the graph upsamples " + std::to_string(info.num_classes()) + " class scores to " +
            (info.output_h > 0 ? "a fixed size" : "the image's full size") +
            " in memory. Export with --output-kind logits and without --upsample-to (the runner then "
            "upsamples in bounded memory), or resize the image";
  else
    text += ": resize the image, or raise --max-memory-gb if the machine has the memory";
  throw std::runtime_error(text);
}

// The command line.
struct Args {
  std::string model, input, output;
  double alpha = 0.5;
  int threads = 0;
  double max_memory_gb = 0;
};

// Fills `args` from the command line; returns -1 to go on, else the exit status (0 for --help, 2 for a
// bad argument, with the usage on stderr).
int parse_args(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; i += 2) {
    std::string key = argv[i];
    if (key == "-h" || key == "--help") return std::cout << kUsage, 0;
    if (i + 1 >= argc) return std::cerr << kUsage << "error: " << key << " needs a value\n", 2;
    std::string value = argv[i + 1];
    try {
      if (key == "--model") args.model = value;
      else if (key == "--input") args.input = value;
      else if (key == "--output") args.output = value;
      else if (key == "--alpha") args.alpha = std::stod(value);
      else if (key == "--threads") args.threads = std::stoi(value);
      else if (key == "--max-memory-gb") {
        args.max_memory_gb = std::stod(value);
        if (!(args.max_memory_gb > 0)) throw std::invalid_argument(value);
      }
      else return std::cerr << kUsage << "error: unknown option " << key << "\n", 2;
    } catch (const std::exception&) {
      return std::cerr << kUsage << "error: bad value '" << value << "' for " << key << "\n", 2;
    }
  }
  if (args.model.empty() || args.input.empty() || args.output.empty())
    return std::cerr << kUsage << "error: --model, --input and --output are required\n", 2;
  return -1;
}

// An opened model: the session and the metadata it carries, checked against each other and for broken
// weights before any image.
struct Model {
  std::unique_ptr<softlabelseg::ort::Session> session;
  ModelInfo info;
};

Model open_model(const Args& args) {
  if (args.threads > 0) cv::setNumThreads(args.threads);
  Model m{std::make_unique<softlabelseg::ort::Session>(args.model, args.threads), {}};
  m.info = softlabelseg::parse_model_info(m.session->metadata());
  check_interface(*m.session, m.info, args.model);
  auto broken = softlabelseg::nonfinite_initializers(args.model);
  if (!broken.empty()) {
    std::string shown;
    for (size_t i = 0; i < broken.size() && i < 5; ++i) shown += (i ? ", " : "") + broken[i];
    if (broken.size() > 5) shown += " and " + std::to_string(broken.size() - 5) + " more";
    throw std::runtime_error("'" + args.model + "' holds NaN or inf weights in " + std::to_string(broken.size()) +
                             " initializer(s) (" + shown + "): every prediction would be meaningless. Export "
                             "it again from a checkpoint with finite weights (export/export_onnx.py names "
                             "the tensors of a broken checkpoint).");
  }
  return m;
}

// Segments and writes one image (decoded by OpenCV, EXIF orientation applied, as the Python tools do).
void segment_one(Model& m, const softlabelseg::Planned& item, double alpha, uint64_t budget) {
  const std::string name = item.input.string();
  cv::Mat bgr = cv::imread(name, cv::IMREAD_COLOR);
  if (bgr.empty())
    throw std::runtime_error("cannot read image '" + name + "': not an image format OpenCV can decode, or corrupt");
  cv::Mat rgb, blended_bgr;
  check_size(bgr.size(), m.info, budget);
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::Mat labels = segment(*m.session, m.info, rgb);
  fs::create_directories(item.labels.parent_path());
  softlabelseg::write_png(item.labels, labels);
  cv::cvtColor(softlabelseg::overlay(rgb, labels, m.info, alpha), blended_bgr, cv::COLOR_RGB2BGR);
  softlabelseg::write_png(item.overlay, blended_bgr);
}

// The loop over the planned images: one that fails is reported and skipped. Returns the exit status (0 all
// written, 1 some failed).
int segment_all(Model& m, const std::vector<softlabelseg::Planned>& plan, const Args& args) {
  const uint64_t budget = args.max_memory_gb > 0 ? uint64_t(args.max_memory_gb * double(uint64_t(1) << 30))
                                                 : softlabelseg::available_memory() / 2;
  int done = 0;
  std::vector<std::string> failed;
  auto start = std::chrono::steady_clock::now();
  std::clock_t cpu_start = std::clock();  // process CPU time, all threads
  for (const auto& item : plan) {
    try {
      segment_one(m, item, args.alpha, budget);
      ++done;
    } catch (const std::exception& e) {
      const std::string file = item.input.string();
      std::string reason = dynamic_cast<const std::bad_alloc*>(&e) ? "out of memory" : e.what();
      if (reason.find(file) == std::string::npos) reason = file + ": " + reason;
      failed.push_back(reason);
      std::cerr << "skipped: " << reason << std::endl;
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double cpu = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  std::cout << done << " image(s) in " << seconds << " s (CPU " << cpu << " s): " << (seconds > 0 ? done / seconds : 0.0)
            << " images/s -> " << args.output
            << (failed.empty() ? "" : " (" + std::to_string(failed.size()) + " failed)") << std::endl;
  return failed.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (int status = parse_args(argc, argv, args); status >= 0) return status;
  try {
    Model model = open_model(args);
    auto plan = softlabelseg::plan_outputs(args.input, args.output);
    return segment_all(model, plan, args);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 2;
  }
}
