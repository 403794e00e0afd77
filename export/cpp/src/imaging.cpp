#include "imaging.hpp"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace softlabelseg {
namespace {

// Source indices and weights of PyTorch's bilinear upsampling along one axis, in float32 as PyTorch's
// CPU kernel computes them.
struct Axis {
  std::vector<int> i0, i1;
  std::vector<float> w1;
  Axis(int n_in, int n_out, bool align_corners) : i0(n_out), i1(n_out), w1(n_out) {
    float scale = align_corners ? (n_out > 1 ? float(n_in - 1) / float(n_out - 1) : 0.f) : float(n_in) / float(n_out);
    for (int d = 0; d < n_out; ++d) {
      float src = align_corners ? scale * float(d) : std::max(scale * (float(d) + 0.5f) - 0.5f, 0.f);
      i0[d] = std::min(int(std::floor(src)), n_in - 1);
      i1[d] = std::min(i0[d] + 1, n_in - 1);
      w1[d] = src - float(i0[d]);
    }
  }
};

// Horizontally interpolated copy of source row `r` of every class: out[c * W + x].
void horizontal(const float* scores, int classes, int h, int w, int r, const Axis& ax, float* out) {
  const int W = int(ax.i0.size());
  for (int c = 0; c < classes; ++c) {
    const float* src = scores + (size_t(c) * h + r) * w;
    float* dst = out + size_t(c) * W;
    for (int x = 0; x < W; ++x) dst[x] = src[ax.i0[x]] * (1.f - ax.w1[x]) + src[ax.i1[x]] * ax.w1[x];
  }
}

}  // namespace

cv::Size input_size_for(const cv::Size& original, const ModelInfo& info) {
  if (info.input_h > 0) return {info.input_w, info.input_h};
  std::fesetround(FE_TONEAREST);
  int h = std::max(1, int(std::nearbyint(original.height * info.resolution_factor)));
  int w = std::max(1, int(std::nearbyint(original.width * info.resolution_factor)));
  return {w, h};
}

cv::Mat resize_image(const cv::Mat& rgb, const cv::Size& size, const ModelInfo& info) {
  if (rgb.size() == size) return rgb;
  bool shrinking = size.width < rgb.cols && size.height < rgb.rows;
  int flag = shrinking ? info.image_shrink_flag : info.image_flag;
  cv::Mat out;
  if (info.image_float32) {  // float32 resize, round half to even: as the data mapper's library does
    cv::Mat f32, small;
    rgb.convertTo(f32, CV_32F);
    cv::resize(f32, small, size, 0, 0, flag);
    small.convertTo(out, CV_8U);
  } else {
    cv::resize(rgb, out, size, 0, 0, flag);
  }
  return out;
}

cv::Mat argmax_upsampled(const float* scores, int classes, int h, int w, const cv::Size& size,
                         bool align_corners) {
  if (classes < 1 || classes > 256)
    throw std::runtime_error("cannot write " + std::to_string(classes) + " classes as uint8 labels");
  const int H = size.height, W = size.width;
  cv::Mat labels(size, CV_8U);
  if (h == H && w == W) {  // in-graph upsampling: argmax only
    cv::parallel_for_(cv::Range(0, H), [&](const cv::Range& rows) {
      std::vector<float> best(W);
      for (int y = rows.start; y < rows.end; ++y) {
        uint8_t* lab = labels.ptr<uint8_t>(y);
        std::copy_n(scores + size_t(y) * W, W, best.data());
        std::fill_n(lab, W, uint8_t(0));
        for (int c = 1; c < classes; ++c) {
          const float* s = scores + (size_t(c) * H + y) * W;
          for (int x = 0; x < W; ++x)
            if (s[x] > best[x]) best[x] = s[x], lab[x] = uint8_t(c);
        }
      }
    });
    return labels;
  }
  const Axis ax(w, W, align_corners), ay(h, H, align_corners);
  cv::parallel_for_(cv::Range(0, H), [&](const cv::Range& rows) {
    std::vector<float> top(size_t(classes) * W), bottom(size_t(classes) * W), best(W);
    int top_row = -1, bottom_row = -1;
    for (int y = rows.start; y < rows.end; ++y) {
      const int r0 = ay.i0[y], r1 = ay.i1[y];
      if (top_row != r0) {
        if (bottom_row == r0) std::swap(top, bottom), std::swap(top_row, bottom_row);
        else horizontal(scores, classes, h, w, r0, ax, top.data()), top_row = r0;
      }
      if (bottom_row != r1) horizontal(scores, classes, h, w, r1, ax, bottom.data()), bottom_row = r1;
      const float b = ay.w1[y], a = 1.f - b;
      uint8_t* lab = labels.ptr<uint8_t>(y);
      std::fill(best.begin(), best.end(), -std::numeric_limits<float>::infinity());
      std::fill_n(lab, W, uint8_t(0));
      for (int c = 0; c < classes; ++c) {
        const float* t = top.data() + size_t(c) * W;
        const float* u = bottom.data() + size_t(c) * W;
        for (int x = 0; x < W; ++x) {
          float v = t[x] * a + u[x] * b;
          if (v > best[x]) best[x] = v, lab[x] = uint8_t(c);
        }
      }
    }
  });
  return labels;
}

cv::Mat resize_labels(const cv::Mat& labels, const cv::Size& size) {
  if (labels.size() == size) return labels;
  cv::Mat out;
  cv::resize(labels, out, size, 0, 0, cv::INTER_NEAREST_EXACT);
  return out;
}

cv::Mat overlay(const cv::Mat& rgb, const cv::Mat& labels, const ModelInfo& info, double alpha) {
  cv::Mat lut(1, 256, CV_8UC3, cv::Scalar(0, 0, 0));
  for (int i = 0; i < info.num_classes() && i < 256; ++i)
    lut.at<cv::Vec3b>(i) = {uchar(info.colors[i][0]), uchar(info.colors[i][1]), uchar(info.colors[i][2])};
  lut.at<cv::Vec3b>(((info.ignore_value % 256) + 256) % 256) = {0, 0, 0};
  cv::Mat labels3, color, blended;
  cv::cvtColor(labels, labels3, cv::COLOR_GRAY2BGR);
  cv::LUT(labels3, lut, color);
  cv::addWeighted(rgb, 1.0 - alpha, color, alpha, 0.0, blended);
  return blended;
}

}  // namespace softlabelseg
