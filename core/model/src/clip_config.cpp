// The implementation of catlip/model/clip_config.h: CLIP's text-tower config (checks, the
// key=value line, FLOPs) and reading a BPE tokenizer file's size and checksum.
#include "catlip/model/clip_config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <zlib.h>

namespace catlip::model {

std::string TextConfig::check() const {
  if (vocab_size < 3) return "text vocab_size must be >= 3";
  if (context_length < 2) return "context_length must be >= 2 (start and end of text)";
  if (width <= 0 || depth <= 0 || heads <= 0 || mlp_ratio <= 0 || embed_dim <= 0)
    return "text width, depth, heads, mlp_ratio and embed_dim must be > 0";
  if (width % heads) return "text width " + std::to_string(width) + " is not divisible by heads " + std::to_string(heads);
  return "";
}

std::string TextConfig::to_string() const {
  std::ostringstream s;
  s << "vocab_size=" << vocab_size << " context_length=" << context_length << " width=" << width
    << " depth=" << depth << " heads=" << heads << " mlp_ratio=" << mlp_ratio << " embed_dim=" << embed_dim
    << " ln_eps=" << ln_eps;
  return s.str();
}

TextConfig TextConfig::parse(const std::string& str) {
  TextConfig c;
  std::istringstream in(str);
  std::string kv;
  while (in >> kv) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) throw std::runtime_error("text model config: bad entry '" + kv + "'");
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    try {
      if (k == "vocab_size") c.vocab_size = std::stoll(v);
      else if (k == "context_length") c.context_length = std::stoll(v);
      else if (k == "width") c.width = std::stoll(v);
      else if (k == "depth") c.depth = std::stoll(v);
      else if (k == "heads") c.heads = std::stoll(v);
      else if (k == "mlp_ratio") c.mlp_ratio = std::stoll(v);
      else if (k == "embed_dim") c.embed_dim = std::stoll(v);
      else if (k == "ln_eps") c.ln_eps = std::stod(v);
      else throw std::runtime_error("unknown key");
    } catch (const std::exception& e) {
      throw std::runtime_error("text model config: bad entry '" + kv + "': " + e.what());
    }
  }
  if (auto e = c.check(); !e.empty()) throw std::runtime_error("text model config '" + str + "': " + e);
  return c;
}

double TextConfig::forward_flops(int64_t tokens) const {
  const double T = double(tokens > 0 ? tokens : context_length), W = double(width);
  double block = 2.0 * T * W * 3 * W + 2.0 * T * T * W * 2 + 2.0 * T * W * W + 2.0 * T * W * W * double(mlp_ratio) * 2;
  return double(depth) * block + 2.0 * W * double(embed_dim);
}

TokenizerInfo read_tokenizer_info(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("tokenizer " + path + ": cannot open (learn one with text.bpe_learn)");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  TokenizerInfo t;
  t.path = path;
  const std::string first = bytes.substr(0, bytes.find('\n'));
  auto at = first.find("vocab_size=");
  if (first.rfind("#version: catlip-bpe/", 0) != 0 || at == std::string::npos)
    throw std::runtime_error("tokenizer " + path +
                             ":1: expected the header '#version: catlip-bpe/1 vocab_size=N ...' (text.bpe_learn writes it)");
  t.vocab_size = std::atoll(first.c_str() + at + 11);
  if (t.vocab_size < 515) throw std::runtime_error("tokenizer " + path + ":1: vocab_size must be >= 515");
  char b[32];
  std::snprintf(b, sizeof b, "crc32:%08x",
                unsigned(crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size())));
  t.checksum = b;
  return t;
}

}  // namespace catlip::model
