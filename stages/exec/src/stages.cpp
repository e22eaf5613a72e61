// The implementation of catlip/exec/stages.h: stage types that run an external program per
#include "catlip/exec/stages.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace catlip::exec {

namespace fs = std::filesystem;

std::string python_helper_dir() {
  if (const char* d = std::getenv("CATLIP_PYTHON_DIR"); d && *d) return d;
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&python_helper_dir), &info) && info.dli_fname) {
    std::error_code ec;
    fs::path dir = fs::weakly_canonical(fs::path(info.dli_fname), ec).parent_path() / "python";
    if (fs::exists(dir / "catlip_stage.py", ec)) return dir.string();
  }
  return "";
}

namespace {

// Bound to the stage's SessionOptions member `opts` (and its max_message_mb
// member); session_options() completes them.
template <class S>
std::vector<ParamSpec> common_params(SessionOptions S::*opts, int64_t S::*max_message_mb) {
  return {
      Param("command", opts, &SessionOptions::child, &ChildSpec::argv).require().describe(
          "Program and arguments (argv; argv[0] is looked up in PATH, relative paths are relative to cwd), "
          "e.g. [\"/usr/bin/python3\", \"filter.py\", \"--drop\", \"dog\"]"),
      Param("env", opts, &SessionOptions::child, &ChildSpec::env).def({}).describe(
          "Extra environment variables for the program, as \"NAME=VALUE\""),
      Param("cwd", opts, &SessionOptions::child, &ChildSpec::cwd).def("").existing_dir().describe("Working directory of the program (\"\": catlip's)"),
      Param("timeout_s", opts, &SessionOptions::timeout_s).def(60.0).range(0, 1e7).describe(
          "Longest time the program may stay silent while catlip waits for it (0: no limit)"),
      Param("startup_timeout_s", opts, &SessionOptions::startup_timeout_s).def(30.0).range(0.1, 1e7).describe(
          "Time the program has to answer the hello"),
      Param("exit_timeout_s", opts, &SessionOptions::exit_timeout_s).def(5.0).range(0, 3600).describe(
          "Time the program has to exit after its end-of-stream before it is killed"),
      Param("max_message_mb", max_message_mb).def(256).range(1, 4095).describe(
          "Largest frame the program may write, in MiB"),
  };
}

SessionCallbacks callbacks(StageContext* ctx, Emitter** out) {
  SessionCallbacks cb;
  cb.sample = [out](Sample&& s) { (*out)->emit(std::move(s)); };
  cb.batch = [out](Batch&& b) { (*out)->emit(std::move(b)); };
  cb.count = [ctx](const std::string& name, int64_t n) { ctx->count(name, n); };
  cb.stop = [ctx] { return ctx->stop_requested(); };
  return cb;
}

}  // namespace

SessionOptions session_options(SessionOptions o, int64_t max_message_mb, const StageContext& ctx,
                               const std::string& mode) {
  // The bound values completed: command checked, the user's env appended to
  // catlip's own variables, max_message_mb scaled.
  o.mode = mode;
  if (o.child.argv.empty() || o.child.argv[0].empty()) throw std::runtime_error("command is empty");
  std::vector<std::string> user_env = std::move(o.child.env);
  o.child.env = {"CATLIP_STAGE=" + ctx.stage_name(), "CATLIP_STAGE_TYPE=" + ctx.stage_type(),
                 "CATLIP_REPLICA=" + std::to_string(ctx.replica()), "CATLIP_REPLICAS=" + std::to_string(ctx.replicas()),
                 "CATLIP_RUN_DIR=" + ctx.run_dir()};
  // `import catlip_stage` works in any Python program the stage runs.
  if (std::string dir = python_helper_dir(); !dir.empty()) {
    const char* pp = std::getenv("PYTHONPATH");
    o.child.env.push_back("PYTHONPATH=" + dir + (pp && *pp ? ":" + std::string(pp) : ""));
    o.child.env.push_back("CATLIP_PYTHON_DIR=" + dir);
  }
  for (auto& e : user_env) o.child.env.push_back(e);
  o.stage = ctx.stage_name();
  o.stage_type = ctx.stage_type();
  o.replica = ctx.replica();
  o.replicas = ctx.replicas();
  o.max_frame_bytes = size_t(max_message_mb) << 20;
  return o;
}

std::vector<std::pair<std::string, std::string>> program_problems(const SessionOptions& o) {
  if (o.child.argv.empty() || o.child.argv[0].empty()) return {{"command", "is empty"}};
  const std::string& prog = o.child.argv[0];
  auto runnable = [](const fs::path& p) { return ::access(p.c_str(), X_OK) == 0 && !fs::is_directory(p); };
  if (prog.find('/') != std::string::npos) {
    fs::path p = prog;
    if (p.is_relative() && !o.child.cwd.empty()) p = fs::path(o.child.cwd) / p;
    if (runnable(p)) return {};
    return {{"command", "program '" + p.string() + "' " + (fs::exists(p) ? "is not executable" : "does not exist")}};
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t i = 0; i <= dirs.size();) {
    size_t j = dirs.find(':', i);
    if (j == std::string::npos) j = dirs.size();
    if (j > i && runnable(fs::path(dirs.substr(i, j - i)) / prog)) return {};
    i = j + 1;
  }
  return {{"command", "program '" + prog + "' is not in PATH"}};
}

StageSchema ExecProcessStage::schema() {
  StageSchema s;
  s.type = "exec.process";
  s.kind = StageKind::Transform;
  s.doc = "Runs a program per replica and passes every item through it over the catlip stage protocol "
          "(docs/stage-protocol.md: length-prefixed frames on its stdin/stdout, samples in the wire encoding); "
          "emits whatever the program writes back (0..n items per input). Its stderr goes to the run log. "
          "Python programs: `import catlip_stage`.";
  s.params = common_params(&ExecProcessStage::opts_, &ExecProcessStage::max_message_mb_);
  s.params.push_back(Param("window", &ExecProcessStage::opts_, &SessionOptions::window).def(4).range(1, 1024).describe(
      "Items sent to the program before it has answered them (pipelining; bounds memory)"));
  return s;
}

void ExecProcessStage::configure() {
  session_ = std::make_unique<ExecSession>(session_options(opts_, max_message_mb_, ctx(), "transform"),
                                             callbacks(&ctx(), &out_));
  session_->start();
}

void ExecProcessStage::process(Sample&& s, Emitter& out) {
  out_ = &out;
  try {
    session_->send(std::move(s));
  } catch (const ExecStopped&) {
    // the run is stopping: drop the item quietly, the runtime reports the stop
  }
}

void ExecProcessStage::flush(Emitter& out) {
  out_ = &out;
  try {
    session_->finish();
  } catch (const ExecStopped&) {
    // the run is stopping: end quietly, the runtime reports the stop
  }
}

void ExecProcessStage::close() {
  if (session_) session_->kill();
}

StageSchema ExecSourceStage::schema() {
  StageSchema s;
  s.type = "exec.source";
  s.kind = StageKind::Source;
  s.doc = "Runs a program per replica that produces items over the catlip stage protocol "
          "(docs/stage-protocol.md) until it ends its stream. CATLIP_REPLICA / CATLIP_REPLICAS tell it its share. "
          "Python programs: `import catlip_stage`.";
  s.params = common_params(&ExecSourceStage::opts_, &ExecSourceStage::max_message_mb_);
  return s;
}

void ExecSourceStage::configure() {
  session_ = std::make_unique<ExecSession>(session_options(opts_, max_message_mb_, ctx(), "source"),
                                             callbacks(&ctx(), &out_));
  session_->start();
}

bool ExecSourceStage::produce(Emitter& out) {
  out_ = &out;
  try {
    return session_->receive();
  } catch (const ExecStopped&) {
    return false;
  }
}

void ExecSourceStage::close() {
  if (session_) session_->kill();
}

}  // namespace catlip::exec
