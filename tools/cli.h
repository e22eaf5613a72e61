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

}  // namespace catlip::cli

#define CATLIP_CLI_CONCAT_(a, b) a##b
#define CATLIP_CLI_CONCAT(a, b) CATLIP_CLI_CONCAT_(a, b)
#define CATLIP_COMMAND(NAME, SUMMARY, FN) \
  static ::catlip::cli::CommandRegistrar CATLIP_CLI_CONCAT(catlip_cmd_, __LINE__)(NAME, SUMMARY, FN)
