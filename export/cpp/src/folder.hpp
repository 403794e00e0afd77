// The folder side of the runner, as every folder tool of the project has it (softlabelseg/folder_contract.py):
// the image extensions, the output names <stem>_labels.png and <stem>_overlay.png under the input's
// sub-folder, two inputs of one stem refused before any image, an output folder never inside the input
// folder, and atomic PNG writes.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace softlabelseg {

// The image extensions (compared in lower case); the same list as softlabelseg.folder_contract.
extern const std::vector<std::string> kImageExtensions;

// `input` itself, or the images under folder `input` (recursive, sorted). Throws when there is none.
std::vector<std::filesystem::path> list_images(const std::filesystem::path& input);

// Throws when `input` is a folder and `output` is that folder or inside it (symbolic links resolved).
void check_output_folder(const std::string& input, const std::string& output);

// One input image and where its outputs go.
struct Planned {
  std::filesystem::path input;
  std::filesystem::path labels;   // <output>/<sub-folder>/<stem>_labels.png
  std::filesystem::path overlay;  // <output>/<sub-folder>/<stem>_overlay.png
};

// The outputs of every image of `input` (a file or a folder) under `output`, checked before any image is
// read: the output folder is not the input folder nor inside it, and no two inputs share a stem (throws
// naming both).
std::vector<Planned> plan_outputs(const std::string& input, const std::string& output);

// PNG-encodes `image` into a temporary file beside `path`, fsyncs it and renames it onto `path`: the file
// is complete or keeps its old content, also when the process is killed (at most a .tmp_* file remains).
void write_png(const std::filesystem::path& path, const cv::Mat& image);

}  // namespace softlabelseg
