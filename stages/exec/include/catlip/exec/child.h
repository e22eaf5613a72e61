// catlip/exec/child.h - a child program with its stdin and stdout on pipes.
//
// The child inherits stderr (so its messages reach the run log with the
// stage's prefix), no other descriptor, and dies with the thread that
// started it (PR_SET_PDEATHSIG): a worker that dies never leaves it behind.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace catlip::exec {

struct ChildSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  std::vector<std::string> env;   // "NAME=VALUE", added to (or replacing in) the current environment
  std::string cwd;                // "" = the current directory
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { kill_and_reap(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Throws std::runtime_error when the program cannot be started (not
  // found, not executable, bad cwd), with the reason.
  void start(const ChildSpec& spec);
  pid_t pid() const { return pid_; }
  int stdin_fd() const { return in_; }    // non-blocking, write end
  int stdout_fd() const { return out_; }  // non-blocking, read end
  void close_stdin();
  void close_stdout();
  bool running() const { return pid_ > 0 && !reaped_; }
  // Waits up to `timeout_s` for the child to exit; true if it has (status()).
  bool wait(double timeout_s);
  int status() const { return status_; }
  // "exited with status 3", "killed by signal 11 (Segmentation fault)".
  std::string describe_status() const;
  bool exited_ok() const;
  // SIGKILL (if still running) and reap; closes the pipes.
  void kill_and_reap();

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// "python3 filter.py --drop x" (shortened), for messages.
std::string command_line(const std::vector<std::string>& argv, size_t max_chars = 80);

}  // namespace catlip::exec
