// Helpers shared by tests: temporary directories and running the CLI.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace catlip::test {

// A fresh directory under $TMPDIR, removed when the object dies (unless
// CATLIP_KEEP_TEST_DIRS is set).
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "t");
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CmdResult {
  int exit_code = -1;  // exit status, or 128+signal
  std::string out;     // stdout and stderr together
};

// Runs a shell command line (through /bin/sh -c), capturing output.
CmdResult run_cmd(const std::string& cmdline);
// Starts `catlip run ARGS` as a child process with stdout and stderr in
// `log`; returns its pid (the caller waits for it or kills it).
int start_run(const std::string& args, const std::string& log);
// Path of the built `catlip` binary.
std::string catlip_bin();
std::string source_dir();
void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);
// Processes (other than this one) whose command line contains `needle`.
std::vector<int> pids_with(const std::string& needle);
int count_processes(const std::string& needle);
// catlip-worker processes of the run in `run_dir` (argv: catlip:<stage>/<replica>
// --spec FILE --run-dir RUN_DIR ...), only those of replica `tag` ("decode/1") if given.
std::vector<int> worker_pids(const std::string& run_dir, const std::string& tag = "");
// Every sample of the shards `pattern` names (catlip shards ls), one entry
// "<shard file name>\t<index in the shard>\t<key>" each: one epoch's ids as
// a trainer's id log names them.
std::multiset<std::string> shard_sample_ids(const std::string& pattern);
// Lines in a file (0 when it does not exist).
int count_lines(const std::string& path);
// Whether `dir` holds a trainer checkpoint (*.catlip).
bool has_checkpoint(const std::string& dir);
// The rows of a trainer id log (train_ids*.tsv: step epoch shard index url
// key), comments skipped, each split at tabs.
std::vector<std::vector<std::string>> id_log_rows(const std::string& path);
// The parameters of a tiny train.catlip stage for graph tests, a TOML line
// each: ViT `dim` x `depth` (2 heads, 32 px, patch 8), batch 8, `steps`, a
// checkpoint every `checkpoint_every` steps (2 kept), on the CPU with one
// thread, no warm-up, no log lines, no export, id logs on. A test adds its
// own keys (lr, order, ...) after them.
std::string tiny_catlip_train_keys(const std::string& vocab, int steps, int checkpoint_every, int dim = 32,
                                   int depth = 1);
// The project venv's interpreter (<source>/.venv/bin/python: the pinned torch
// and the Python baselines, tools/requirements.txt); /usr/bin/python3 if
// there is no venv. Tests that compare with Python use this one.
std::string venv_python();
// The whitespace-separated fields of the first line of `out` whose first
// field is `first` (a bench table's row); empty if there is none.
std::vector<std::string> table_row(const std::string& out, const std::string& first);
// The path of catlip-torch beside catlip; skips the test if it was not built.
std::string torch_cli_or_skip();
// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
// Ends the test as skipped: prints "SKIPPED: why" and exits with code 77,
// which CTest reports as skipped (SKIP_RETURN_CODE, set by catlip_add_test).
// Call it first thing in a test case, before anything needs cleaning up.
[[noreturn]] void skip_test(const std::string& why);

}  // namespace catlip::test
