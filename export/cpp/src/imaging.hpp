// Pre- and post-processing of the serving pipeline, the same steps as export/runtime.py:
// the training filter to shrink the image, bilinear upsampling of the scores with PyTorch geometry
// fused with the argmax, nearest upsampling of label maps, the colour overlay.
#pragma once

#include <cstdint>

#include <opencv2/core.hpp>

#include "model_info.hpp"

namespace softlabelseg {

// Model input size for an image of `original` size: the static size, or round-half-even(size * factor).
cv::Size input_size_for(const cv::Size& original, const ModelInfo& info);

// uint8 RGB image resized to `size` with the OpenCV flags the export's metadata names for the data mapper's
// filter (the flag for shrinking when both sides shrink); torch modes resize float32 as the mapper does.
cv::Mat resize_image(const cv::Mat& rgb, const cv::Size& size, const ModelInfo& info);

// uint8 (size) labels: argmax over the C classes of `scores` (C, h, w float32, contiguous) resized
// bilinearly to `size` (PyTorch F.interpolate geometry, float32 weights). Computed row by row from
// two horizontally interpolated source rows per class, so memory stays O(C * width), never
// O(C * H * W); rows are split over OpenCV's threads. Ties keep the lowest class, as numpy's argmax.
cv::Mat argmax_upsampled(const float* scores, int classes, int h, int w, const cv::Size& size,
                         bool align_corners);

// uint8 labels (h, w) resized to `size` with nearest-exact (cell centres), as the Python runner does.
cv::Mat resize_labels(const cv::Mat& labels, const cv::Size& size);

// RGB overlay: (1 - alpha) * image + alpha * class colour (ignore and unknown ids black).
cv::Mat overlay(const cv::Mat& rgb, const cv::Mat& labels, const ModelInfo& info, double alpha);

}  // namespace softlabelseg
