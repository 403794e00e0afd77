// softlabelseg_infer: the serving pipeline of export/infer_onnx.py in C++ with OpenCV's DNN module.
//
//   softlabelseg_infer --model model.onnx --input <image or folder> --output <folder> [--alpha 0.5]
//
// For each image: RGB -> resize by the model's resolution factor with the training filter -> graph
// (uint8 NCHW in) -> bilinear upsampling of the scores to the original size (PyTorch align_corners
// semantics) -> argmax -> <stem>_labels.png (train ids) and <stem>_overlay.png.
#include <algorithm>
#include <chrono>
#include <cfenv>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "onnx_metadata.hpp"

namespace fs = std::filesystem;
using softlabelseg::ModelInfo;

namespace {

int cv_filter(const std::string& name) {
  if (name == "nearest") return cv::INTER_NEAREST;
  if (name == "nearest-exact") return cv::INTER_NEAREST_EXACT;
  if (name == "linear" || name == "bilinear") return cv::INTER_LINEAR;
  if (name == "area" || name == "box") return cv::INTER_AREA;
  if (name == "cubic" || name == "bicubic") return cv::INTER_CUBIC;
  throw std::runtime_error("unknown image resize filter '" + name + "'");
}

// Same as the Python runner's resize_image: the training data mapper's image filter, with cv2 only.
// torch modes resize float32 and round half to even (cv::saturate_cast), as the mapper does.
cv::Mat resize_image(const cv::Mat& rgb, const cv::Size& size, const ModelInfo& info) {
  if (rgb.size() == size) return rgb;
  const std::string& mode = info.image_resize;
  auto colon = mode.rfind(':');
  std::string library = colon == std::string::npos ? "" : mode.substr(0, colon);
  std::string name = colon == std::string::npos ? mode : mode.substr(colon + 1);
  int flag = cv_filter(name);
  bool shrinking = size.width < rgb.cols && size.height < rgb.rows;
  if ((library == "pil" || info.image_antialias) && shrinking && name != "nearest" && name != "nearest-exact")
    flag = cv::INTER_AREA;
  cv::Mat out;
  if (library == "torch") {
    cv::Mat f32, small;
    rgb.convertTo(f32, CV_32F);
    cv::resize(f32, small, size, 0, 0, flag);
    small.convertTo(out, CV_8U);
  } else {
    cv::resize(rgb, out, size, 0, 0, flag);
  }
  return out;
}

// Same rule as the Python runner: static size, else round-half-to-even(size * factor).
cv::Size input_size_for(const cv::Size& original, const ModelInfo& info) {
  if (info.input_h > 0) return {info.input_w, info.input_h};
  std::fesetround(FE_TONEAREST);
  int h = std::max(1, int(std::nearbyint(original.height * info.resolution_factor)));
  int w = std::max(1, int(std::nearbyint(original.width * info.resolution_factor)));
  return {w, h};
}

// PyTorch bilinear source indices / weights along one axis (align_corners=True only).
void axis_weights(int n_in, int n_out, std::vector<int>& i0, std::vector<int>& i1, std::vector<float>& w1) {
  i0.resize(n_out), i1.resize(n_out), w1.resize(n_out);
  double scale = n_out > 1 ? double(n_in - 1) / (n_out - 1) : 0.0;
  for (int d = 0; d < n_out; ++d) {
    double src = d * scale;
    i0[d] = std::min(int(std::floor(src)), n_in - 1);
    i1[d] = std::min(i0[d] + 1, n_in - 1);
    w1[d] = float(src - i0[d]);
  }
}

cv::Mat upsample_plane(const cv::Mat& plane, const cv::Size& size, bool align_corners) {
  if (plane.size() == size) return plane;
  cv::Mat out;
  if (!align_corners) {
    cv::resize(plane, out, size, 0, 0, cv::INTER_LINEAR);  // half-pixel geometry == PyTorch
    return out;
  }
  std::vector<int> x0, x1, y0, y1;
  std::vector<float> wx, wy;
  axis_weights(plane.cols, size.width, x0, x1, wx);
  axis_weights(plane.rows, size.height, y0, y1, wy);
  cv::Mat rows(plane.rows, size.width, CV_32F);
  for (int r = 0; r < plane.rows; ++r) {
    const float* src = plane.ptr<float>(r);
    float* dst = rows.ptr<float>(r);
    for (int c = 0; c < size.width; ++c) dst[c] = src[x0[c]] * (1.f - wx[c]) + src[x1[c]] * wx[c];
  }
  out.create(size, CV_32F);
  for (int r = 0; r < size.height; ++r) {
    const float* a = rows.ptr<float>(y0[r]);
    const float* b = rows.ptr<float>(y1[r]);
    float* dst = out.ptr<float>(r);
    for (int c = 0; c < size.width; ++c) dst[c] = a[c] * (1.f - wy[r]) + b[c] * wy[r];
  }
  return out;
}

// Upsample each class plane of a (1, C, h, w) score blob and keep a running argmax (first max wins).
cv::Mat argmax_upsampled(const cv::Mat& scores, const cv::Size& size, bool align_corners) {
  const int classes = scores.size[1], h = scores.size[2], w = scores.size[3];
  cv::Mat best(size, CV_32F, cv::Scalar(-INFINITY)), labels(size, CV_8U, cv::Scalar(0));
  for (int c = 0; c < classes; ++c) {
    cv::Mat plane(h, w, CV_32F, const_cast<float*>(scores.ptr<float>(0, c)));
    cv::Mat up = upsample_plane(plane, size, align_corners);
    cv::Mat better = up > best;
    up.copyTo(best, better);
    labels.setTo(c, better);
  }
  return labels;
}

cv::Mat colorize(const cv::Mat& labels, const ModelInfo& info) {
  cv::Mat lut(1, 256, CV_8UC3, cv::Scalar(0, 0, 0));
  for (size_t i = 0; i < info.colors.size() && i < 256; ++i)
    lut.at<cv::Vec3b>(int(i)) = {uchar(info.colors[i][0]), uchar(info.colors[i][1]), uchar(info.colors[i][2])};
  lut.at<cv::Vec3b>(info.ignore_value % 256) = {0, 0, 0};
  cv::Mat labels3, color;
  cv::cvtColor(labels, labels3, cv::COLOR_GRAY2BGR);
  cv::LUT(labels3, lut, color);
  return color;  // RGB
}

cv::Mat segment(cv::dnn::Net& net, const ModelInfo& info, const cv::Mat& rgb) {
  cv::Mat small = resize_image(rgb, input_size_for(rgb.size(), info), info);
  // uint8 NCHW blob: the graph casts and normalises itself.
  cv::Mat blob = cv::dnn::blobFromImage(small, 1.0, cv::Size(), cv::Scalar(), false, false, CV_8U);
  net.setInput(blob);
  cv::Mat out = net.forward();
  if (info.output_kind == "labels") {
    cv::Mat labels(out.size[out.dims - 2], out.size[out.dims - 1], out.type(), out.ptr());
    cv::Mat labels8;
    labels.convertTo(labels8, CV_8U);
    if (labels8.size() != rgb.size()) cv::resize(labels8, labels8, rgb.size(), 0, 0, cv::INTER_NEAREST_EXACT);
    return labels8;
  }
  if (out.dims != 4 || out.type() != CV_32F) throw std::runtime_error("expected float (1, C, h, w) scores");
  return argmax_upsampled(out, rgb.size(), info.align_corners);
}

std::vector<fs::path> list_images(const fs::path& input) {
  static const std::vector<std::string> exts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};
  std::vector<fs::path> files;
  if (fs::is_directory(input)) {
    for (const auto& e : fs::recursive_directory_iterator(input)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (e.is_regular_file() && std::find(exts.begin(), exts.end(), ext) != exts.end()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw std::runtime_error("no images under folder '" + input.string() + "'");
  } else {
    if (!fs::exists(input)) throw std::runtime_error("input '" + input.string() + "' does not exist");
    files.push_back(input);
  }
  return files;
}

int usage() {
  std::cerr << "usage: softlabelseg_infer --model model.onnx --input <image or folder> --output <folder>"
               " [--alpha 0.5] [--threads N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, input, output;
  double alpha = 0.5;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i], value = argv[i + 1];
    if (key == "--model") model = value;
    else if (key == "--input") input = value;
    else if (key == "--output") output = value;
    else if (key == "--alpha") alpha = std::stod(value);
    else if (key == "--threads") threads = std::stoi(value);
    else return usage();
  }
  if (model.empty() || input.empty() || output.empty() || argc % 2 == 0) return usage();
  try {
    ModelInfo info = softlabelseg::parse_model_info(softlabelseg::read_onnx_metadata(model));
    if (info.input_h == 0)
      throw std::runtime_error("'" + model + "' has a dynamic input size, which OpenCV's DNN importer cannot"
                               " parse: re-export with --input-size HxW");
    if (threads > 0) cv::setNumThreads(threads);
    cv::dnn::Net net = cv::dnn::readNetFromONNX(model);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    fs::create_directories(output);
    auto files = list_images(input);
    int done = 0, failed = 0;
    auto start = std::chrono::steady_clock::now();
    for (const auto& file : files) {
      cv::Mat bgr = cv::imread(file.string(), cv::IMREAD_COLOR);
      if (bgr.empty()) {
        std::cerr << "skipped: cannot read image '" << file.string() << "'\n";
        ++failed;
        continue;
      }
      cv::Mat rgb, blended, blended_bgr;
      cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
      cv::Mat labels = segment(net, info, rgb);
      cv::imwrite((fs::path(output) / (file.stem().string() + "_labels.png")).string(), labels);
      cv::addWeighted(rgb, 1.0 - alpha, colorize(labels, info), alpha, 0.0, blended);
      cv::cvtColor(blended, blended_bgr, cv::COLOR_RGB2BGR);
      cv::imwrite((fs::path(output) / (file.stem().string() + "_overlay.png")).string(), blended_bgr);
      ++done;
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << done << " image(s) in " << seconds << " s: " << (seconds > 0 ? done / seconds : 0.0)
              << " images/s -> " << output << (failed ? " (" + std::to_string(failed) + " unreadable)" : "")
              << std::endl;
    return failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 2;
  }
}
