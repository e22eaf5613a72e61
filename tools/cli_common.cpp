#include "cli.h"

#include <algorithm>
#include <cstring>
#include <string>

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

}  // namespace catlip::cli
