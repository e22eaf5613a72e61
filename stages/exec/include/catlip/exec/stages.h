// catlip/exec/stages.h - stage types that run an external program per
// replica and talk to it over the stage protocol (docs/stage-protocol.md):
// exec.process (a transform) and exec.source (a program that only produces).
#pragma once

#include <memory>

#include "catlip/exec/session.h"
#include "catlip/stage.h"

namespace catlip::exec {

// Directory holding catlip_stage.py next to the plugin that contains this
// code (<plugin dir>/python), or $CATLIP_PYTHON_DIR; "" if neither exists.
std::string python_helper_dir();

// Completes `o`, which holds the bound parameters (command, env, cwd,
// timeouts, window), from the stage context: catlip's CATLIP_* variables
// before the user's env, the frame limit in bytes. Throws on an empty command.
SessionOptions session_options(SessionOptions o, int64_t max_message_mb, const StageContext& ctx,
                               const std::string& mode);

// check_files() of both exec stages: command[0] found and executable.
std::vector<std::pair<std::string, std::string>> program_problems(const SessionOptions& o);

class ExecProcessStage : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  // The program (command[0]) exists: in PATH, or as a path from cwd.
  std::vector<std::pair<std::string, std::string>> check_files() const override { return program_problems(opts_); }
  void process(Sample&& s, Emitter& out) override;
  void flush(Emitter& out) override;
  void close() override;

 private:
  Emitter* out_ = nullptr;
  SessionOptions opts_;  // bound parameters (command, env, cwd, timeouts, window)
  int64_t max_message_mb_ = 256;
  std::unique_ptr<ExecSession> session_;
};

class ExecSourceStage : public SourceStage {
 public:
  static StageSchema schema();
  void configure() override;
  // The program (command[0]) exists: in PATH, or as a path from cwd.
  std::vector<std::pair<std::string, std::string>> check_files() const override { return program_problems(opts_); }
  bool produce(Emitter& out) override;
  void close() override;

 private:
  Emitter* out_ = nullptr;
  SessionOptions opts_;  // bound parameters (command, env, cwd, timeouts, window)
  int64_t max_message_mb_ = 256;
  std::unique_ptr<ExecSession> session_;
};

}  // namespace catlip::exec
