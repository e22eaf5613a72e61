// The shared command-line code of the catlip binaries (cli.h): command registry and
// dispatch, Args, check_syntax and did-you-mean, the venv python, a free port.
#include "cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <cstring>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "catlip/json.h"

namespace catlip::cli {

std::vector<Command>& commands() {
  static std::vector<Command> c;
  return c;
}

int dispatch(int argc, char** argv) {
  // Two-word commands first ("bench decode"), then one-word ones.
  if (argc >= 3) {
    std::string two = std::string(argv[1]) + " " + argv[2];
    for (auto& c : commands())
      if (c.name == two) {
        std::string name = two;
        argv[2] = name.data();
        return c.fn(argc - 2, argv + 2);
      }
  }
  for (auto& c : commands())
    if (c.name == argv[1]) return c.fn(argc - 1, argv + 1);
  return -1;
}

bool wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) return true;
  return false;
}

Args::Args(int argc, char** argv, std::vector<std::string> flags) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string name = a.substr(2), value;
      auto eq = name.find('=');
      bool is_flag = std::find(flags.begin(), flags.end(), name) != flags.end();
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (!is_flag) {
        if (i + 1 >= argc) {
          error_ = "option --" + name + " needs a value";
          continue;
        }
        value = argv[++i];
      } else {
        value = "1";
      }
      opts_.emplace_back(name, value);
    } else if (a == "-h") {
      opts_.emplace_back("help", "1");
    } else {
      pos_.push_back(a);
    }
  }
}

bool Args::has(const std::string& n) const {
  for (auto& [k, v] : opts_)
    if (k == n) return true;
  return false;
}

std::string Args::get(const std::string& n, const std::string& def) const {
  std::string r = def;
  for (auto& [k, v] : opts_)
    if (k == n) r = v;
  return r;
}

long long Args::get_int(const std::string& n, long long def) const {
  return has(n) ? std::stoll(get(n)) : def;
}

double Args::get_double(const std::string& n, double def) const {
  return has(n) ? std::stod(get(n)) : def;
}

std::vector<std::string> Args::all(const std::string& n) const {
  std::vector<std::string> r;
  for (auto& [k, v] : opts_)
    if (k == n) r.push_back(v);
  return r;
}

std::vector<std::string> Args::unknown(const std::vector<std::string>& known) const {
  std::vector<std::string> r;
  for (auto& [k, v] : opts_)
    if (k != "help" && std::find(known.begin(), known.end(), k) == known.end()) r.push_back("--" + k);
  return r;
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool looks_like_number(const std::string& s) {
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == 0 && !s.empty();
}

}  // namespace

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (auto& c : candidates) {
    size_t d = edit_distance(word, c);
    // A prefix of a known option ("--run" for "--run-dir") is close too.
    if (word.size() >= 3 && c.rfind(word, 0) == 0) d = std::min<size_t>(d, 1);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(const std::string& given, const std::vector<std::string>& options) {
  std::string name = given.substr(std::min(given.find_first_not_of('-'), given.size()));
  name = name.substr(0, name.find('='));
  std::string near = closest(name, options);
  return near.empty() ? "" : " (did you mean --" + near + "?)";
}

int check_syntax(const Args& a, const Syntax& s) {
  std::string problem;
  auto option_problem = [&](const std::string& given, const std::string& name) {
    std::string near = closest(name, s.options);
    return "unknown option " + given + (near.empty() ? "" : " (did you mean --" + near + "?)");
  };
  const std::string kNeeds = " needs a value", kOpt = "option --";
  const std::string& err = a.error();
  if (!err.empty() && err.rfind(kOpt, 0) == 0 && err.size() > kNeeds.size() &&
      err.compare(err.size() - kNeeds.size(), kNeeds.size(), kNeeds) == 0 &&
      std::find(s.options.begin(), s.options.end(),
                err.substr(kOpt.size(), err.size() - kOpt.size() - kNeeds.size())) == s.options.end()) {
    // "--al" at the end: not a known option short of its value, a misspelt one.
    std::string name = err.substr(kOpt.size(), err.size() - kOpt.size() - kNeeds.size());
    problem = option_problem("--" + name, name);
  } else if (!err.empty()) {
    problem = err;
  } else if (auto u = a.unknown(s.options); !u.empty()) {
    problem = option_problem(u[0], u[0].substr(2));
  } else {
    for (auto& p : a.positional())
      if (p.size() > 1 && p[0] == '-' && !looks_like_number(p)) {
        std::string name = p.substr(p.rfind('-') + 1);
        auto eq = name.find('=');
        if (eq != std::string::npos) name = name.substr(0, eq);
        problem = option_problem(p, name);
        if (std::find(s.options.begin(), s.options.end(), name) != s.options.end())
          problem = "unknown option " + p + " (did you mean --" + name + "?)";
        break;
      }
    if (problem.empty() && a.positional().size() > s.max_positional) {
      const std::string& extra = a.positional()[s.max_positional];
      problem = s.max_positional == 0 ? "unexpected argument '" + extra + "' (this command takes none)"
                                      : "unexpected argument '" + extra + "' (at most " +
                                            std::to_string(s.max_positional) + " expected)";
    } else if (problem.empty() && a.positional().size() < s.min_positional) {
      problem = "missing argument (" + std::to_string(s.min_positional) + " expected)";
    }
  }
  if (problem.empty()) return kOk;
  std::cerr << s.command << ": " << problem << "\n" << s.usage << (s.usage.empty() || s.usage.back() == '\n' ? "" : "\n")
            << "(see " << s.command << " --help)\n";
  return kUsage;
}

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

std::string default_python(const char* argv0) {
  namespace fs = std::filesystem;
  if (const char* p = std::getenv("CATLIP_PYTHON"); p && *p) return p;
  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (ec && argv0) exe = fs::absolute(argv0, ec);
  for (fs::path up : {exe.parent_path() / "../..", exe.parent_path() / ".."}) {
    auto py = up / ".venv/bin/python";
    // Not canonical: a venv's python is a symlink to the base interpreter,
    // and only the venv path finds the venv's packages.
    if (fs::exists(py, ec)) return py.lexically_normal().string();
  }
#ifdef CATLIP_VENV_PYTHON
  if (fs::exists(CATLIP_VENV_PYTHON, ec)) return CATLIP_VENV_PYTHON;
#endif
  return "/usr/bin/python3";
}

double summary_figure(const std::string& run_dir, const std::string& stage, const std::string& name, double def) {
  try {
    const json::Value sum = json::read_file(run_dir + "/summary.json");
    const json::Value* st = json::find(json::at(json::at(sum, "final"), "stages"), stage);
    if (!st) return def;
    if (auto* v = json::find(*st, name); v && v->is_number()) return json::number(*v);
    for (const char* section : {"gauges", "counters"})
      if (auto* sec = json::find(*st, section))
        if (auto* v = json::find(*sec, name); v && v->is_number()) return json::number(*v);
  } catch (const std::exception&) {
    // no or unreadable summary.json: the figure is absent (the default)
  }
  return def;
}

}  // namespace catlip::cli

namespace catlip::cli {
std::string catlip_front_end() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "catlip").string();
}
}  // namespace catlip::cli
