#include "folder.hpp"

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>

#include <opencv2/imgcodecs.hpp>

namespace fs = std::filesystem;

namespace softlabelseg {

const std::vector<std::string> kImageExtensions = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};

namespace {

std::string extension_list() {
  std::string text;
  for (size_t i = 0; i < kImageExtensions.size(); ++i) text += (i ? ", " : "") + kImageExtensions[i];
  return text;
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

}  // namespace

std::vector<fs::path> list_images(const fs::path& input) {
  std::vector<fs::path> files;
  if (fs::is_directory(input)) {
    for (const auto& e : fs::recursive_directory_iterator(input)) {
      std::string ext = e.path().extension().string();
      for (auto& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      bool image = std::find(kImageExtensions.begin(), kImageExtensions.end(), ext) != kImageExtensions.end();
      if (e.is_regular_file() && image) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw std::runtime_error("no images (" + extension_list() + ") under folder '" + input.string() + "'");
  } else {
    if (!fs::exists(input)) throw std::runtime_error("input '" + input.string() + "' does not exist");
    files.push_back(input);
  }
  return files;
}

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

std::vector<Planned> plan_outputs(const std::string& input, const std::string& output) {
  check_output_folder(input, output);
  auto files = list_images(input);
  const fs::path root = fs::is_directory(input) ? fs::path(input) : fs::path(input).parent_path();
  std::map<fs::path, fs::path> seen;  // output stem -> input: nothing is silently overwritten
  std::vector<Planned> plan;
  for (const auto& file : files) {
    fs::path stem = file.lexically_relative(root).parent_path() / file.stem();
    auto [it, fresh] = seen.emplace(stem, file);
    fs::path base = fs::path(output) / stem;
    if (!fresh)
      throw std::runtime_error("inputs '" + it->second.string() + "' and '" + file.string() +
                               "' would both write '" + base.string() +
                               "_labels.png': rename one of them or segment them separately");
    plan.push_back({file, base.string() + "_labels.png", base.string() + "_overlay.png"});
  }
  return plan;
}

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

}  // namespace softlabelseg
