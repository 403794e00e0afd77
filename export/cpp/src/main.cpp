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
// skipped; the exit status is then 1.
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

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

std::vector<fs::path> list_images(const fs::path& input) {
  static const std::vector<std::string> exts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};
  std::vector<fs::path> files;
  if (fs::is_directory(input)) {
    for (const auto& e : fs::recursive_directory_iterator(input)) {
      std::string ext = e.path().extension().string();
      for (auto& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      if (e.is_regular_file() && std::find(exts.begin(), exts.end(), ext) != exts.end()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw std::runtime_error("no images (.png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp) under folder '" + input.string() + "'");
  } else {
    if (!fs::exists(input)) throw std::runtime_error("input '" + input.string() + "' does not exist");
    files.push_back(input);
  }
  return files;
}

// Mode bits a plain open() gives a new file: 0666 minus the umask (read once, before any thread writes).
mode_t file_mode() {
  static const mode_t mode = [] {
    mode_t mask = umask(022);
    umask(mask);
    return mode_t(0666 & ~mask);
  }();
  return mode;
}

// PNG-encodes `image` into a temporary file beside `path`, fsyncs it and renames it onto `path`: the file
// is complete or keeps its old content, also when the process is killed (at most a .tmp_* file remains).
void write_png(const fs::path& path, const cv::Mat& image) {
  std::vector<uchar> png;
  if (!cv::imencode(".png", image, png)) throw std::runtime_error("cannot encode '" + path.string() + "' as PNG");
  std::string tmp = (path.parent_path() / (".tmp_" + path.filename().string() + ".XXXXXX")).string();
  int fd = mkstemp(tmp.data());
  auto fail = [&](const std::string& what) {
    std::string reason = std::strerror(errno);
    if (fd >= 0) close(fd);
    unlink(tmp.c_str());
    throw std::runtime_error("cannot write '" + path.string() + "' (" + what + "): " + reason);
  };
  if (fd < 0) throw std::runtime_error("cannot write '" + path.string() + "': " + std::strerror(errno));
  if (fchmod(fd, file_mode()) != 0) fail("chmod");
  for (size_t done = 0; done < png.size();) {
    ssize_t n = write(fd, png.data() + done, png.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write");
    done += size_t(n);
  }
  if (fsync(fd) != 0) fail("fsync");
  if (close(fd) != 0) { fd = -1; fail("close"); }
  fd = -1;
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
}

// Throws when `input` is a folder and `output` is that folder or inside it (symbolic links resolved).
void check_output_folder(const std::string& input, const std::string& output) {
  if (!fs::is_directory(input)) return;
  fs::path source = fs::canonical(input), target = fs::weakly_canonical(fs::absolute(output));
  if (target.filename().empty()) target = target.parent_path();
  auto [s, t] = std::mismatch(source.begin(), source.end(), target.begin(), target.end());
  if (s != source.end()) return;
  std::string where = t == target.end() ? "is the input folder" : "is inside the input folder '" + input + "'";
  throw std::runtime_error("output folder '" + output + "' " + where +
                           ": its _labels.png and _overlay.png files would overwrite input images of the same "
                           "name and be read as images by the next run. Choose an output folder outside the "
                           "input folder.");
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

}  // namespace

int main(int argc, char** argv) {
  std::string model, input, output;
  double alpha = 0.5;
  int threads = 0;
  double max_memory_gb = 0;
  for (int i = 1; i < argc; i += 2) {
    std::string key = argv[i];
    if (key == "-h" || key == "--help") return std::cout << kUsage, 0;
    if (i + 1 >= argc) return std::cerr << kUsage << "error: " << key << " needs a value\n", 2;
    std::string value = argv[i + 1];
    try {
      if (key == "--model") model = value;
      else if (key == "--input") input = value;
      else if (key == "--output") output = value;
      else if (key == "--alpha") alpha = std::stod(value);
      else if (key == "--threads") threads = std::stoi(value);
      else if (key == "--max-memory-gb") {
        max_memory_gb = std::stod(value);
        if (!(max_memory_gb > 0)) throw std::invalid_argument(value);
      }
      else return std::cerr << kUsage << "error: unknown option " << key << "\n", 2;
    } catch (const std::exception&) {
      return std::cerr << kUsage << "error: bad value '" << value << "' for " << key << "\n", 2;
    }
  }
  if (model.empty() || input.empty() || output.empty())
    return std::cerr << kUsage << "error: --model, --input and --output are required\n", 2;
  try {
    if (threads > 0) cv::setNumThreads(threads);
    softlabelseg::ort::Session session(model, threads);
    ModelInfo info = softlabelseg::parse_model_info(session.metadata());
    check_interface(session, info, model);
    auto broken = softlabelseg::nonfinite_initializers(model);
    if (!broken.empty()) {
      std::string shown;
      for (size_t i = 0; i < broken.size() && i < 5; ++i) shown += (i ? ", " : "") + broken[i];
      if (broken.size() > 5) shown += " and " + std::to_string(broken.size() - 5) + " more";
      throw std::runtime_error("'" + model + "' holds NaN or inf weights in " + std::to_string(broken.size()) +
                               " initializer(s) (" + shown + "): every prediction would be meaningless. Export "
                               "it again from a checkpoint with finite weights (export/export_onnx.py names "
                               "the tensors of a broken checkpoint).");
    }
    const uint64_t budget = max_memory_gb > 0 ? uint64_t(max_memory_gb * double(uint64_t(1) << 30))
                                              : softlabelseg::available_memory() / 2;
    check_output_folder(input, output);
    auto files = list_images(input);
    const fs::path root = fs::is_directory(input) ? fs::path(input) : fs::path(input).parent_path();
    std::map<fs::path, fs::path> writes;  // output stem -> input: nothing is silently overwritten
    for (const auto& file : files) {
      fs::path stem = file.lexically_relative(root).parent_path() / file.stem();
      auto [it, fresh] = writes.emplace(stem, file);
      if (!fresh)
        throw std::runtime_error("inputs '" + it->second.string() + "' and '" + file.string() +
                                 "' would both write '" + (fs::path(output) / stem).string() +
                                 "_labels.png': rename one of them or segment them separately");
    }
    int done = 0;
    std::vector<std::string> failed;
    auto start = std::chrono::steady_clock::now();
    std::clock_t cpu_start = std::clock();  // process CPU time, all threads
    for (const auto& file : files) {
      try {
        cv::Mat bgr = cv::imread(file.string(), cv::IMREAD_COLOR);
        if (bgr.empty())
          throw std::runtime_error("cannot read image '" + file.string() +
                                   "': not an image format OpenCV can decode, or corrupt");
        cv::Mat rgb, blended_bgr;
        check_size(bgr.size(), info, budget);
        cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
        cv::Mat labels = segment(session, info, rgb);
        fs::path folder = fs::path(output) / file.lexically_relative(root).parent_path();
        fs::create_directories(folder);
        write_png(folder / (file.stem().string() + "_labels.png"), labels);
        cv::cvtColor(softlabelseg::overlay(rgb, labels, info, alpha), blended_bgr, cv::COLOR_RGB2BGR);
        write_png(folder / (file.stem().string() + "_overlay.png"), blended_bgr);
        ++done;
      } catch (const std::exception& e) {
        std::string reason = dynamic_cast<const std::bad_alloc*>(&e) ? "out of memory" : e.what();
        if (reason.find(file.string()) == std::string::npos) reason = file.string() + ": " + reason;
        failed.push_back(reason);
        std::cerr << "skipped: " << reason << std::endl;
      }
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double cpu = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    std::cout << done << " image(s) in " << seconds << " s (CPU " << cpu << " s): " << (seconds > 0 ? done / seconds : 0.0)
              << " images/s -> " << output
              << (failed.empty() ? "" : " (" + std::to_string(failed.size()) + " failed)") << std::endl;
    return failed.empty() ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 2;
  }
}
