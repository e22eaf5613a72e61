// launch_env.cpp - node rank, node count and coordinator address from flags
// or from the environment of the cluster launcher (see launch_env.h).
#include "catlip/launch_env.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <stdexcept>

namespace catlip {
namespace {

constexpr int kDefaultPort = 29400;
constexpr size_t kMaxHosts = 100000;

struct Var {
  const char* name;
  const char* launcher;
};
// Rank and node count sources after the flags, in order of precedence.
const Var kRankVars[] = {{"CATLIP_NODE_RANK", "catlip"},         {"NODE_RANK", "torchrun"},
                         {"GROUP_RANK", "torchrun"},             {"PET_NODE_RANK", "kubernetes"},
                         {"JOB_COMPLETION_INDEX", "kubernetes"}, {"OMPI_COMM_WORLD_RANK", "openmpi"},
                         {"SLURM_NODEID", "slurm"}};
const Var kNodesVars[] = {{"CATLIP_NNODES", "catlip"},  {"NNODES", "torchrun"},
                          {"PET_NNODES", "kubernetes"}, {"GROUP_WORLD_SIZE", "torchrun"},
                          {"OMPI_COMM_WORLD_SIZE", "openmpi"}, {"SLURM_NNODES", "slurm"}};

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

const char* get(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  return v && *v ? v : nullptr;
}

std::string assign(const char* name, const char* value) { return std::string(name) + "=" + value; }

// A whole-string decimal integer in [lo, hi]; `what` ("SLURM_NODEID=abc") and `expect` make the message.
long parse_num(const std::string& s, const std::string& what, long lo, long hi, const char* expect) {
  long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi)
    fail(what + ": expected " + expect);
  return v;
}

int parse_port(const std::string& s, const std::string& what) {
  return static_cast<int>(parse_num(s, what, 1, 65535, "a port number from 1 to 65535"));
}

bool valid_host(const std::string& h) { return !h.empty() && h.find_first_of(" \t\r\n[]/,") == std::string::npos; }

std::pair<std::string, int> split_host_port(const std::string& s, int def_port, const std::string& what) {
  std::string host = s, port;
  bool has_port = false;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) fail(what + ": missing ']' after the IPv6 address");
    host = s.substr(1, close - 1);
    std::string rest = s.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') fail(what + ": expected ':PORT' after ']'");
    has_port = !rest.empty();
    if (has_port) port = rest.substr(1);
  } else if (size_t colon = s.find(':'); colon != std::string::npos) {
    if (s.find(':', colon + 1) != std::string::npos) fail(what + ": an IPv6 address goes in brackets, [ADDR]:PORT");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    has_port = true;
  }
  if (!valid_host(host)) fail(what + ": expected HOST or HOST:PORT");
  return {host, has_port ? parse_port(port, what) : def_port};
}

struct Pick {
  long value;
  std::string from, launcher;
};

// The flag when given (not -1), else the first variable that is set; fails with `missing` when none is.
Pick pick(int flag, const char* flag_name, std::span<const Var> vars, const EnvLookup& env, long lo,
          const char* expect, const char* missing) {
  if (flag != -1) {
    if (flag < lo) fail(std::string(flag_name) + " " + std::to_string(flag) + ": expected " + expect);
    return {flag, flag_name, "flags"};
  }
  for (const Var& v : vars)
    if (const char* s = get(env, v.name))
      return {parse_num(s, assign(v.name, s), lo, INT_MAX, expect), v.name, v.launcher};
  fail(missing);
}

struct Endpoint {
  std::string host, host_src;  // host_src: "from X" or a reason
  int port = 0;
  std::string port_src;
};

void offer(Endpoint& c, const std::string& value, const std::string& from, const std::string& what) {
  auto [host, port] = split_host_port(value, 0, what);
  if (c.host.empty()) c.host = host, c.host_src = "from " + from;
  if (!c.port && port) c.port = port, c.port_src = "from " + from;
}

void master_addr(Endpoint& c, const EnvLookup& env) {
  const char* v = get(env, "MASTER_ADDR");
  if (!v || !c.host.empty()) return;
  std::string s = v, what = assign("MASTER_ADDR", v);
  if (std::count(s.begin(), s.end(), ':') == 1 || s.find("]:") != std::string::npos)
    fail(what + ": expected a host without a port (the port goes in MASTER_PORT)");
  c.host = s[0] == '[' ? split_host_port(s, 0, what).first : s;  // a bare IPv6 address is fine here
  if (!valid_host(c.host)) fail(what + ": expected a host name or address");
  c.host_src = "from MASTER_ADDR";
}

void slurm(Endpoint& c, const EnvLookup& env) {
  // SLURM_NODEID counts the nodes of the step, so the step's list comes first.
  for (const char* name : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST"}) {
    const char* v = get(env, name);
    if (!v || !c.host.empty()) continue;
    auto hosts = expand_hostlist(v);
    if (!hosts.ok()) fail(assign(name, v) + ": " + hosts.status().message());
    if (hosts->empty()) continue;
    c.host = hosts->front();
    c.host_src = std::string("from ") + name;
  }
  if (const char* v = get(env, "SLURM_JOB_ID"); v && !c.port) {
    long job = parse_num(v, assign("SLURM_JOB_ID", v), 0, LONG_MAX, "a job id (an integer >= 0)");
    c.port = static_cast<int>(20000 + job % 20000), c.port_src = "from SLURM_JOB_ID";
  }
}

void open_mpi(Endpoint& c, const EnvLookup& env) {
  const char* local = get(env, "OMPI_COMM_WORLD_LOCAL_SIZE");
  const char* world = get(env, "OMPI_COMM_WORLD_SIZE");
  if (!c.host.empty() || !local || !world) return;
  const char* expect = "a process count (an integer >= 1)";
  if (parse_num(local, assign("OMPI_COMM_WORLD_LOCAL_SIZE", local), 1, INT_MAX, expect) ==
      parse_num(world, assign("OMPI_COMM_WORLD_SIZE", world), 1, INT_MAX, expect))
    c.host = "127.0.0.1", c.host_src = "(all Open MPI ranks on this host)";
}

[[noreturn]] void no_coordinator(const std::string& launcher) {
  const std::string how = "pass --coordinator HOST:PORT or export CATLIP_COORDINATOR=HOST:PORT or MASTER_ADDR";
  if (launcher == "openmpi") fail("Open MPI does not say where rank 0 runs: " + how);
  if (launcher == "kubernetes") fail("Kubernetes does not say where index 0 runs: " + how + " (e.g. pod 0's DNS name)");
  fail("cannot tell where the coordinator (node 0) runs: " + how);
}

void pick_coordinator(const NodeFlags& flags, const EnvLookup& env, NodeIdentity& id) {
  Endpoint c;
  if (!flags.coordinator.empty())
    offer(c, flags.coordinator, "--coordinator", "--coordinator " + flags.coordinator);
  if (const char* v = get(env, "CATLIP_COORDINATOR"))
    offer(c, v, "CATLIP_COORDINATOR", assign("CATLIP_COORDINATOR", v));
  master_addr(c, env);
  if (const char* v = get(env, "MASTER_PORT"); v && !c.port)
    c.port = parse_port(v, assign("MASTER_PORT", v)), c.port_src = "from MASTER_PORT";
  slurm(c, env);
  open_mpi(c, env);
  if (c.host.empty()) no_coordinator(id.launcher);
  if (!c.port) c.port = kDefaultPort, c.port_src = "(default)";
  id.coordinator_host = c.host;
  id.coordinator_port = c.port;
  id.sources.push_back("coordinator " + c.host + " " + c.host_src);
  id.sources.push_back("port " + std::to_string(c.port) + " " + c.port_src);
}

std::string endpoint(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

[[noreturn]] void bad_list(const std::string& list, const std::string& why) {
  fail("malformed host list '" + list + "': " + why);
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
}

// The inside of one bracket group, "1-3,05" -> 1 2 3 05 (width of the low end kept).
std::vector<std::string> expand_group(const std::string& body, const std::string& list) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t comma = body.find(',', pos);
    std::string part = body.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t dash = part.find('-');
    std::string lo = part.substr(0, dash), hi = dash == std::string::npos ? lo : part.substr(dash + 1);
    if (!all_digits(lo) || !all_digits(hi)) bad_list(list, "'" + part + "' in [" + body + "] is not N or N-M");
    long a = std::stol(lo), b = std::stol(hi);
    if (b < a) bad_list(list, "range " + part + " runs backwards");
    if (out.size() + (b - a) >= kMaxHosts) bad_list(list, "more than " + std::to_string(kMaxHosts) + " hosts");
    for (long i = a; i <= b; ++i) {
      std::string n = std::to_string(i);
      out.push_back(std::string(lo.size() > n.size() ? lo.size() - n.size() : 0, '0') + n);
    }
    if (comma == std::string::npos) return out;
    pos = comma + 1;
  }
}

// Splits at the commas outside brackets; checks the brackets pair up.
std::vector<std::string> split_items(const std::string& list) {
  std::vector<std::string> items(1);
  bool open = false;
  for (char ch : list) {
    if (ch == '[' && open) bad_list(list, "nested '['");
    if (ch == ']' && !open) bad_list(list, "']' without '['");
    if (ch == '[' || ch == ']') open = ch == '[';
    if (ch == ',' && !open)
      items.emplace_back();
    else
      items.back() += ch;
  }
  if (open) bad_list(list, "unclosed '['");
  return items;
}

void expand_item(const std::string& item, const std::string& list, std::vector<std::string>& out) {
  if (item.empty()) bad_list(list, "empty host name");
  std::vector<std::string> names{""};
  for (size_t i = 0; i < item.size();) {
    if (std::isspace(static_cast<unsigned char>(item[i]))) bad_list(list, "whitespace");
    if (item[i] != '[') {
      for (auto& n : names) n += item[i];
      ++i;
      continue;
    }
    size_t close = item.find(']', i);
    auto group = expand_group(item.substr(i + 1, close - i - 1), list);
    if (out.size() + names.size() * group.size() > kMaxHosts)
      bad_list(list, "more than " + std::to_string(kMaxHosts) + " hosts");
    std::vector<std::string> next;
    for (const auto& n : names)
      for (const auto& g : group) next.push_back(n + g);
    names.swap(next);
    i = close + 1;
  }
  out.insert(out.end(), names.begin(), names.end());
}

std::string set_error(std::string* error, const std::string& msg) {
  if (error) *error = msg;
  return "";
}

std::string getaddr_ipv4(const std::string& host, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res) return set_error(error, "cannot resolve '" + host + "': " + ::gai_strerror(rc));
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
  ::freeaddrinfo(res);
  return buf;
}

// NodeAddr= of `scontrol show node NAME` when scontrol is on PATH, "" otherwise.
std::string scontrol_node_addr(const std::string& name) {
  for (unsigned char ch : name)
    if (!std::isalnum(ch) && ch != '.' && ch != '_' && ch != '-') return "";
  std::string cmd = "command -v scontrol >/dev/null 2>&1 && scontrol show node '" + name + "' 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  size_t at = out.find("NodeAddr=");
  if (at == std::string::npos) return "";
  at += 9;
  return out.substr(at, out.find_first_of(" \t\n", at) - at);
}

}  // namespace

std::string NodeIdentity::describe() const {
  std::string s = "node " + std::to_string(rank) + " of " + std::to_string(nodes) + " (" + launcher + ": ";
  for (size_t i = 0; i < sources.size(); ++i) s += (i ? ", " : "") + sources[i];
  return s + "), coordinator " + endpoint(coordinator_host, coordinator_port);
}

EnvLookup process_env() {
  return [](const char* name) -> const char* { return std::getenv(name); };
}

namespace {
NodeIdentity detect(const NodeFlags& flags, const EnvLookup& env) {
  Pick rank = pick(flags.rank, "--rank", kRankVars, env, 0, "a node rank (an integer >= 0)",
                   "cannot tell this node's rank: pass --rank K or export CATLIP_NODE_RANK (also read: NODE_RANK, "
                   "GROUP_RANK, PET_NODE_RANK, JOB_COMPLETION_INDEX, SLURM_NODEID, OMPI_COMM_WORLD_RANK)");
  Pick nodes = pick(flags.nodes, "--nodes", kNodesVars, env, 1, "a node count (an integer >= 1)",
                    "cannot tell the node count: pass --nodes N or export CATLIP_NNODES (also read: NNODES, "
                    "PET_NNODES, GROUP_WORLD_SIZE, SLURM_NNODES, OMPI_COMM_WORLD_SIZE)");
  if (rank.value >= nodes.value)
    fail("rank " + std::to_string(rank.value) + " (from " + rank.from + ") is not below the node count " +
         std::to_string(nodes.value) + " (from " + nodes.from + ")");
  NodeIdentity id;
  id.rank = static_cast<int>(rank.value);
  id.nodes = static_cast<int>(nodes.value);
  id.launcher = rank.launcher;
  id.sources.push_back("rank " + std::to_string(id.rank) + " from " + rank.from);
  id.sources.push_back("nodes " + std::to_string(id.nodes) + " from " + nodes.from);
  pick_coordinator(flags, env, id);
  return id;
}
}  // namespace

// The parsing helpers throw std::invalid_argument, naming the variable or
// flag; the public functions turn that into a Status.
Result<NodeIdentity> detect_node_identity(const NodeFlags& flags, const EnvLookup& env) {
  try {
    return detect(flags, env);
  } catch (const std::invalid_argument& e) {
    return Status::Invalid(e.what());
  }
}

Result<std::vector<std::string>> expand_hostlist(const std::string& list) {
  std::vector<std::string> out;
  if (list.empty()) return out;
  try {
    for (const auto& item : split_items(list)) expand_item(item, list, out);
  } catch (const std::invalid_argument& e) {
    return Status::Invalid(e.what());
  }
  return out;
}

Result<std::pair<std::string, int>> parse_host_port(const std::string& s, int def_port) {
  try {
    return split_host_port(s, def_port, "address '" + s + "'");
  } catch (const std::invalid_argument& e) {
    return Status::Invalid(e.what());
  }
}

Result<std::string> resolve_host(const std::string& host) {
  std::string dns_error, ip = getaddr_ipv4(host, &dns_error);
  if (!ip.empty()) return ip;
  std::string addr = scontrol_node_addr(host);  // Slurm node names are often not in DNS
  if (addr.empty() || addr == host) return Status::NotFound(dns_error);
  ip = getaddr_ipv4(addr, nullptr);
  if (ip.empty())
    return Status::NotFound(dns_error + "; its Slurm NodeAddr '" + addr + "' does not resolve either");
  return ip;
}

Result<std::string> local_address_towards(const std::string& ipv4) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  if (::inet_pton(AF_INET, ipv4.c_str(), &to.sin_addr) != 1)
    return Status::Invalid("not an IPv4 address: '" + ipv4 + "'");
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable(std::string("socket: ") + std::strerror(errno));
  sockaddr_in me{};
  socklen_t len = sizeof me;
  std::string err;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
    err = "no route to " + ipv4 + ": " + std::strerror(errno);
  else if (::getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len) != 0)
    err = std::string("getsockname: ") + std::strerror(errno);
  ::close(fd);
  if (!err.empty()) return Status::Unavailable(err);
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &me.sin_addr, buf, sizeof buf);
  return std::string(buf);
}

}  // namespace catlip
