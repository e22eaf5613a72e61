// JPEG decoding with libjpeg-turbo's libjpeg API: DCT-scaled, row-range and
// column-range decode. Errors longjmp back into jpeg_decode_region only.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <memory>
#include <mutex>

#include <jpeglib.h>
#include <jerror.h>
#include <turbojpeg.h>

#include "codecs.h"

namespace catlip::image::detail {

const std::vector<int>& jpeg_scale_numerators() {
  static const std::vector<int> nums = [] {
    std::vector<int> v;
    int count = 0;
    tjscalingfactor* f = tjGetScalingFactors(&count);
    for (int i = 0; f && i < count; ++i) {
      // Express as n/8; keep factors <= 1 that are exact eighths.
      if (f[i].denom <= 0 || (8 * f[i].num) % f[i].denom) continue;
      int n = 8 * f[i].num / f[i].denom;
      // Only 1/8, 1/4, 1/2 and 1 have SIMD IDCTs in libjpeg-turbo; the other
      // eighths use plain C IDCTs (chroma at 2n x 2n) and measured slower
      // than a full-size decode, so they are not worth choosing.
      if (n == 1 || n == 2 || n == 4 || n == 8) v.push_back(n);
    }
    if (v.empty() || std::find(v.begin(), v.end(), 8) == v.end()) v.push_back(8);
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
  }();
  return nums;
}

namespace {

struct ErrorMgr {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
  char warning[JMSG_LENGTH_MAX] = {};
  bool corrupt_warning = false;
};

void on_error_exit(j_common_ptr c) {
  auto* e = reinterpret_cast<ErrorMgr*>(c->err);
  c->err->format_message(c, e->message);
  longjmp(e->jump, 1);
}

// Warnings (level -1) that mean the pixel data is damaged: we refuse the
// image rather than train on grey smears. Benign ones (extraneous bytes
// between markers, odd Adobe transforms) are ignored as PIL does.
void on_emit_message(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  auto* e = reinterpret_cast<ErrorMgr*>(c->err);
  int code = c->err->msg_code;
  if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE ||
      code == JWRN_MUST_RESYNC || code == JWRN_NOT_SEQUENTIAL || code == JWRN_BOGUS_PROGRESSION) {
    if (!e->corrupt_warning) c->err->format_message(c, e->warning);
    e->corrupt_warning = true;
  }
  c->err->num_warnings++;
}

void on_output_message(j_common_ptr) {}  // never print to stderr

struct Job {
  jpeg_decompress_struct cinfo;
  ErrorMgr err;
  std::vector<uint8_t> row4;  // CMYK scanline
  std::vector<JSAMPROW> rows;
};

// Adobe/libjpeg-turbo convention: stored CMYK is inverted, so R = C*K/255.
void cmyk_to_rgb(const uint8_t* in, uint8_t* out, int width) {
  for (int x = 0; x < width; ++x, in += 4, out += 3) {
    int k = in[3];
    out[0] = static_cast<uint8_t>((in[0] * k + 127) / 255);
    out[1] = static_cast<uint8_t>((in[1] * k + 127) / 255);
    out[2] = static_cast<uint8_t>((in[2] * k + 127) / 255);
  }
}

}  // namespace

std::string jpeg_decode_region(const uint8_t* data, size_t size, int n, int x_lo, int x_hi, int y_lo, int y_hi,
                               DecodedRegion& out) {
  // Heap-allocated so that nothing the error path needs lives in a register
  // across setjmp/longjmp.
  auto job = std::make_unique<Job>();
  jpeg_decompress_struct* ci = &job->cinfo;
  ci->err = jpeg_std_error(&job->err.pub);
  job->err.pub.error_exit = on_error_exit;
  job->err.pub.emit_message = on_emit_message;
  job->err.pub.output_message = on_output_message;
  jpeg_create_decompress(ci);
  if (setjmp(job->err.jump)) {
    jpeg_destroy_decompress(ci);
    return std::string("corrupt JPEG: ") + job->err.message;
  }
  jpeg_mem_src(ci, data, static_cast<unsigned long>(size));
  jpeg_read_header(ci, TRUE);
  const bool cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
  ci->out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGB;
  ci->scale_num = static_cast<unsigned>(n);
  ci->scale_denom = 8;
  jpeg_start_decompress(ci);
  const int ow = static_cast<int>(ci->output_width), oh = static_cast<int>(ci->output_height);
  if (x_lo < 0 || y_lo < 0 || x_hi >= ow || y_hi >= oh || x_lo > x_hi || y_lo > y_hi) {
    jpeg_destroy_decompress(ci);
    return "internal: requested region outside the scaled image";
  }
  JDIMENSION xoff = static_cast<JDIMENSION>(x_lo), xw = static_cast<JDIMENSION>(x_hi - x_lo + 1);
  if (xw < ci->output_width) jpeg_crop_scanline(ci, &xoff, &xw);  // widens to iMCU boundaries
  else xoff = 0, xw = ci->output_width;
  out.x0 = static_cast<int>(xoff);
  out.width = static_cast<int>(ci->output_width);
  out.y0 = y_lo;
  out.height = y_hi - y_lo + 1;
  out.stride = size_t(out.width) * 3;
  if (out.buf.size() < out.stride * out.height) out.buf.resize(out.stride * out.height);  // grow only
  if (cmyk) job->row4.resize(size_t(out.width) * 4);
  if (y_lo > 0) jpeg_skip_scanlines(ci, static_cast<JDIMENSION>(y_lo));
  // RGB: hand libjpeg all row pointers at once (it then writes whole
  // upsampled row groups in place); CMYK: one row at a time via a buffer.
  job->rows.resize(out.height);
  for (int r = 0; r < out.height; ++r) job->rows[r] = cmyk ? job->row4.data() : out.buf.data() + size_t(r) * out.stride;
  for (int r = 0; r < out.height;) {
    JDIMENSION want = cmyk ? 1 : static_cast<JDIMENSION>(out.height - r);
    JDIMENSION got = jpeg_read_scanlines(ci, job->rows.data() + r, want);
    if (got == 0) {
      jpeg_destroy_decompress(ci);
      return "corrupt JPEG: decoder returned no scanline";
    }
    if (cmyk) cmyk_to_rgb(job->row4.data(), out.buf.data() + size_t(r) * out.stride, out.width);
    r += static_cast<int>(got);
  }
  const bool damaged = job->err.corrupt_warning;
  // Rows below the region are never decoded: abort instead of finishing.
  jpeg_abort_decompress(ci);
  jpeg_destroy_decompress(ci);
  if (damaged) return std::string("corrupt JPEG data: ") + job->err.warning;
  return "";
}

}  // namespace catlip::image::detail
