// The implementation of catlip/exec/child.h: a child program with its stdin and stdout on pipes.
#include "catlip/exec/child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace catlip::exec {

std::string command_line(const std::vector<std::string>& argv, size_t max_chars) {
  std::string s;
  for (auto& a : argv) {
    if (!s.empty()) s += ' ';
    std::string q;
    for (char c : a) q += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : std::string(1, c);
    s += q.find(' ') != std::string::npos || q.empty() ? "'" + q + "'" : q;
  }
  if (s.size() > max_chars) s = s.substr(0, max_chars - 3) + "...";
  return s;
}

namespace {
void close_pair(int fds[2]) {
  for (int i = 0; i < 2; ++i)
    if (fds[i] >= 0) ::close(fds[i]);
}
}  // namespace

void ChildProcess::start(const ChildSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) throw std::runtime_error("empty command");
  // Everything the child needs is built before fork: the parent may have
  // other threads, so the child calls only async-signal-safe functions.
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv;
  }
  for (auto& kv : spec.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw std::runtime_error("env entry '" + kv + "' is not NAME=VALUE");
    env[kv.substr(0, eq)] = kv;
  }
  std::vector<std::string> env_strings;
  for (auto& [k, v] : env) env_strings.push_back(v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  for (auto& s : spec.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  // execvpe searches the PATH of the child's environment.
  std::string path = env.count("PATH") ? env["PATH"].substr(5) : "/usr/local/bin:/usr/bin:/bin";
  std::vector<std::string> candidates;
  if (spec.argv[0].find('/') != std::string::npos) {
    candidates.push_back(spec.argv[0]);
  } else {
    size_t b = 0;
    for (;;) {
      size_t e = path.find(':', b);
      std::string dir = path.substr(b, e == std::string::npos ? std::string::npos : e - b);
      candidates.push_back((dir.empty() ? "." : dir) + "/" + spec.argv[0]);
      if (e == std::string::npos) break;
      b = e + 1;
    }
  }

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    close_pair(in);
    close_pair(out);
    close_pair(err);
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  // Bigger pipes: fewer wake-ups per item for large samples (best effort,
  // up to the unprivileged limit /proc/sys/fs/pipe-max-size, 1 MiB by default).
  ::fcntl(in[1], F_SETPIPE_SZ, 1 << 20);
  ::fcntl(out[1], F_SETPIPE_SZ, 1 << 20);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    close_pair(in);
    close_pair(out);
    close_pair(err);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // Program side: stdin/stdout on the pipes, stderr inherited, every other
    // descriptor closed (the worker's sockets, the launcher's listen fds).
    int e = err[1];
    if (::dup2(in[0], 0) < 0 || ::dup2(out[1], 1) < 0) ::_exit(127);
    if (e < 3) e = ::fcntl(e, F_DUPFD_CLOEXEC, 3);
    bool closed = (e == 3 || ::syscall(SYS_close_range, 3u, unsigned(e - 1), 0u) == 0) &&
                  ::syscall(SYS_close_range, unsigned(e + 1), ~0u, 0u) == 0;
    if (!closed)
      for (int fd = 3; fd < 4096; ++fd)
        if (fd != e) ::close(fd);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int code = 0;
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) {
      code = errno;
    } else {
      code = ENOENT;
      for (auto& c : candidates) {
        ::execve(c.c_str(), argv.data(), envp.data());
        if (errno != ENOENT && errno != ENOTDIR) code = errno;
      }
      code = code ? code : ENOENT;
      code = -code;  // negative: exec failed (positive: chdir failed)
    }
    ssize_t w = ::write(e, &code, sizeof code);
    (void)w;
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  pid_ = pid;
  reaped_ = false;
  in_ = in[1];
  out_ = out[0];
  int code = 0;
  ssize_t got;
  do got = ::read(err[0], &code, sizeof code);
  while (got < 0 && errno == EINTR);
  ::close(err[0]);
  if (got == sizeof code) {
    wait(5);
    kill_and_reap();
    if (code > 0) throw std::runtime_error("cannot change to directory '" + spec.cwd + "': " + std::strerror(code));
    throw std::runtime_error("cannot execute '" + spec.argv[0] + "': " + std::strerror(-code));
  }
  ::fcntl(in_, F_SETFL, ::fcntl(in_, F_GETFL) | O_NONBLOCK);
  ::fcntl(out_, F_SETFL, ::fcntl(out_, F_GETFL) | O_NONBLOCK);
}

void ChildProcess::close_stdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

void ChildProcess::close_stdout() {
  if (out_ >= 0) ::close(out_);
  out_ = -1;
}

bool ChildProcess::wait(double timeout_s) {
  if (pid_ <= 0) return true;
  if (reaped_) return true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      status_ = r == pid_ ? st : 0;
      reaped_ = true;
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string ChildProcess::describe_status() const {
  if (!reaped_) return "is still running";
  if (WIFSIGNALED(status_))
    return "was killed by signal " + std::to_string(WTERMSIG(status_)) + " (" + ::strsignal(WTERMSIG(status_)) + ")";
  if (WIFEXITED(status_)) return "exited with status " + std::to_string(WEXITSTATUS(status_));
  return "ended (wait status " + std::to_string(status_) + ")";
}

bool ChildProcess::exited_ok() const { return reaped_ && WIFEXITED(status_) && WEXITSTATUS(status_) == 0; }

void ChildProcess::kill_and_reap() {
  close_stdin();
  close_stdout();
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    pid_t r;
    do r = ::waitpid(pid_, &st, 0);
    while (r < 0 && errno == EINTR);
    status_ = st;
    reaped_ = true;
  }
}

}  // namespace catlip::exec
