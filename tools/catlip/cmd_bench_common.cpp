// tools/catlip/cmd_bench_common.cpp: bench_common.h (shards and vocabulary
// for the benches; in catlip-bench with the commands that use it).
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "bench_common.h"
#include "peer_bench.h"

namespace fs = std::filesystem;
namespace pb = catlip::cli::peers;

namespace catlip::cli::bench {

std::vector<std::string> write_shards(const std::string& self, const std::string& dir, long long n, long long size,
                                      double& bytes) {
  const long long shards = std::min<long long>(8, n);
  const long long per_shard = (n + shards - 1) / shards;
  pb::Child c = pb::run_child({self, "shards", "synth", dir + "/data/bench", "--samples", std::to_string(n), "--size",
                               std::to_string(size), "--samples-per-shard", std::to_string(per_shard)},
                              dir + "/synth.log");
  std::vector<std::string> files;
  if (c.rc != 0) return files;
  bytes = 0;
  for (auto& e : fs::directory_iterator(dir + "/data"))
    if (e.path().extension() == ".tar") {
      files.push_back(e.path().string());
      bytes += double(fs::file_size(e.path()));
    }
  std::sort(files.begin(), files.end());
  return files;
}

std::string toml_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", \"" : "\"") + v[i] + "\"";
  return s + "]";
}

bool write_vocab(const std::string& self, const std::string& dir, const std::string& urls, const std::string& vocab) {
  std::ofstream(dir + "/vocab.toml")
      << "# catlip bench: the synset vocabulary of the benchmark's captions\n"
      << "[graph]\nname = \"bench-vocab\"\n"
      << "[stages.read]\ntype = \"shards.source\"\nurls = " << urls << "\nshuffle_shards = false\n"
      << "[stages.parse]\ntype = \"text.parse\"\ninputs = [\"read\"]\nwrite_tokens = false\n"
      << "[stages.count]\ntype = \"text.synset_count\"\ninputs = [\"parse\"]\n"
      << "[stages.merge]\ntype = \"text.vocab_merge\"\ninputs = [\"count\"]\nmin_count = 1\noutput = \"" << vocab
      << "\"\n";
  return pb::run_child({self, "run", dir + "/vocab.toml", "--run-dir", dir + "/run-vocab", "--quiet"},
                       dir + "/vocab.log")
             .rc == 0;
}

bool WorkDir::open(const std::string& out, const std::string& name, std::string& error) {
  keep_ = !out.empty();
  if (keep_) {
    path_ = fs::absolute(out).lexically_normal().string();
    std::error_code ec;
    fs::create_directories(path_, ec);
    if (ec) error = "cannot create " + path_ + ": " + ec.message();
    return !ec;
  }
  std::string tmpl = (fs::temp_directory_path() / ("catlip-bench-" + name + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) {
    error = "mkdtemp " + tmpl + ": " + std::strerror(errno);
    keep_ = true;  // nothing to remove
    return false;
  }
  path_ = tmpl;
  return true;
}

WorkDir::~WorkDir() {
  std::error_code ec;
  if (!keep_ && !path_.empty()) fs::remove_all(path_, ec);
}

int vocab_rows(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  int n = 0;
  while (std::getline(f, line))
    if (!line.empty() && line[0] != '#' && line.rfind("index\t", 0) != 0) ++n;
  return n;
}

}  // namespace catlip::cli::bench
