// tools/catlip/bench_common.h - what `catlip bench pipeline` and `catlip bench
// soak` share: synthetic shards with captions and their synset vocabulary,
// written by real `catlip` runs before anything is timed.
#pragma once

#include <string>
#include <vector>

namespace catlip::cli::bench {

// `catlip shards synth` of n samples of size x size JPEGs with captions into
// DIR/data, in 8 shards (fewer when n < 8), so every replica has some. Returns
// the shard paths, sorted (empty on failure; DIR/synth.log says why), and
// their total size in `bytes`.
std::vector<std::string> write_shards(const std::string& self, const std::string& dir, long long n, long long size,
                                      double& bytes);

// A TOML array of strings: ["a", "b"].
std::string toml_list(const std::vector<std::string>& v);

// The synset vocabulary of the shards' captions (every synset seen, min_count
// 1) by a graph (DIR/vocab.toml, run dir DIR/run-vocab, log DIR/vocab.log).
bool write_vocab(const std::string& self, const std::string& dir, const std::string& urls, const std::string& vocab);

// Rows of a text.vocab_merge TSV.
int vocab_rows(const std::string& path);

// A bench's work directory: `out` (kept) when not empty, else a new
// temporary TMPDIR/catlip-bench-NAME-XXXXXX, removed when this goes.
class WorkDir {
 public:
  // False (and `error` says why) when it cannot be made.
  bool open(const std::string& out, const std::string& name, std::string& error);
  ~WorkDir();
  const std::string& path() const { return path_; }
  bool kept() const { return keep_; }

 private:
  std::string path_;
  bool keep_ = true;
};

}  // namespace catlip::cli::bench
