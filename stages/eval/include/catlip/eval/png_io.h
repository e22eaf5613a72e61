// catlip/eval/png_io.h - writing RGB8 images as PNG (libpng) and embedding
// files as base64 data URIs in the HTML report.
#pragma once

#include <cstdint>
#include <string>

namespace catlip::eval {

// RGB8 HWC pixels -> PNG bytes. Throws std::runtime_error on libpng failure.
std::string encode_png_rgb(const uint8_t* rgb, int width, int height);
// Writes atomically enough for a report (whole file, then rename).
void write_file_bytes(const std::string& path, const std::string& bytes);

std::string base64(const std::string& bytes);

}  // namespace catlip::eval
