// tools/cli.h - subcommands of the `catlip` binaries.
//
// Each subcommand lives in its own .cpp under tools/catlip/ (lean binary, no
// LibTorch) or tools/torch/ (catlip-torch, linked with the LibTorch stages)
// and registers itself:
//
//   static int cmd_shards_pack(int argc, char** argv);  // argv[0] = "shards pack"
//   CATLIP_COMMAND("shards pack", "Pack a folder of image+caption files into shards",
//                  cmd_shards_pack);
//
// Names may have two words ("bench decode"). Exit codes: see ExitCode.
#pragma once

#include <string>
#include <vector>

namespace catlip::cli {

enum ExitCode : int {
  kOk = 0,
  kFailed = 1,       // the run or command failed
  kUsage = 2,        // bad command line
  kInvalid = 3,      // invalid graph/config (nothing was started)
  kPluginError = 4,  // a plugin could not be loaded
  kInterrupted = 130,
};

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  std::string name, summary;
  CommandFn fn;
};

std::vector<Command>& commands();

struct CommandRegistrar {
  CommandRegistrar(const char* name, const char* summary, CommandFn fn) {
    commands().push_back(Command{name, summary, fn});
  }
};

// Runs the registered command named by argv[1] (or argv[1] + " " + argv[2]
// for two-word commands). Returns -1 if there is no such command.
int dispatch(int argc, char** argv);

// True if argv contains -h or --help.
bool wants_help(int argc, char** argv);

// A small command-line parser: `--name value`, `--name=value`, `--flag`,
// positionals. Options listed in `flags` take no value. Repeated options
// keep every value (see all()).
class Args {
 public:
  Args(int argc, char** argv, std::vector<std::string> flags = {});
  bool has(const std::string& name) const;
  std::string get(const std::string& name, const std::string& def = "") const;
  long long get_int(const std::string& name, long long def) const;
  double get_double(const std::string& name, double def) const;
  std::vector<std::string> all(const std::string& name) const;
  const std::vector<std::string>& positional() const { return pos_; }
  // Options given but not in `known`; for "unknown option" errors.
  std::vector<std::string> unknown(const std::vector<std::string>& known) const;
  const std::string& error() const { return error_; }

 private:
  std::vector<std::pair<std::string, std::string>> opts_;
  std::vector<std::string> pos_;
  std::string error_;
};

// What a command accepts: its known options (with a value or flags, as
// given to Args) and how many positional arguments. `usage` is its usage
// line, printed with every command-line error.
struct Syntax {
  std::string command;  // "catlip run"
  std::string usage;    // "usage: catlip run [GRAPH] [--set S.P=V]... ..."
  std::vector<std::string> options;
  size_t min_positional = 0, max_positional = 0;
};

// kOk when the command line fits; otherwise prints what is wrong (an
// unknown option with "did you mean --x?" where one is close, a single-dash
// spelling of a known option, a stray or missing argument, an option without
// its value) and the usage line to stderr, and returns kUsage.
int check_syntax(const Args& a, const Syntax& s);
// The closest of `candidates` to `word` within a small edit distance, or "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates);
// " (did you mean --x?)" for an unknown option `given` ("--sett", "-set"), or "".
std::string did_you_mean(const std::string& given, const std::vector<std::string>& options);
// The `catlip` front end beside the running binary (what a sibling such as
// catlip-bench runs for `catlip run`, `catlip shards synth`, ...).
std::string catlip_front_end();
// A TCP port on 127.0.0.1 that is free now (bound to port 0, read, closed),
// or -1: for benches that start their own rendezvous (bench train/clip --ranks).
int free_loopback_port();
// The Python that benches run their baselines with (one interpreter for
// every comparison): $CATLIP_PYTHON, else the project venv next to the build
// (<repo>/.venv/bin/python, found from the binary at argv0: build/bin/..),
// else the compile-time venv of this build, else /usr/bin/python3.
std::string default_python(const char* argv0);
// A figure of stage `stage` in RUN_DIR/summary.json (written by catlip run):
// its final field `name` ("items_in", "bytes_out", ...), else its gauge or
// counter of that name; `def` when the file, the stage or the figure is missing.
double summary_figure(const std::string& run_dir, const std::string& stage, const std::string& name, double def = 0);

}  // namespace catlip::cli

#define CATLIP_CLI_CONCAT_(a, b) a##b
#define CATLIP_CLI_CONCAT(a, b) CATLIP_CLI_CONCAT_(a, b)
// __COUNTER__, not __LINE__: in a unity build two files' registrations may
// sit on the same line.
#define CATLIP_COMMAND(NAME, SUMMARY, FN) \
  static ::catlip::cli::CommandRegistrar CATLIP_CLI_CONCAT(catlip_cmd_, __COUNTER__)(NAME, SUMMARY, FN)
