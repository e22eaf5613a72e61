// catlip shards ls / stat: list or count the samples of a shard set.
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "catlip/shards/url_expand.h"
#include "catlip/shards/webdataset.h"
#include "cli.h"

using namespace catlip;
using namespace catlip::cli;
using namespace catlip::shards;

namespace {

const char* kCommonOpts =
    "  --require ALTS    a sample must have one of these fields (e.g. 'jpg|png|webp'); repeatable\n"
    "  --keep EXT        only keep these extensions (repeatable; default: all)\n"
    "  --max-member-bytes B  skip larger tar members (default 64 MiB)\n"
    "  --timeout S       HTTP timeout in seconds (default 30)\n"
    "  --retries N       HTTP retries per shard (default 5)\n"
    "  --ca-file FILE    extra CA bundle for https\n";

struct Common {
  std::vector<std::string> urls;
  ReadOptions read;
  StreamOptions stream;
};

int parse_common(const char* cmd, const Args& a, const std::vector<std::string>& extra, Common& c) {
  std::vector<std::string> known{"require", "keep", "max-member-bytes", "timeout", "retries", "ca-file"};
  known.insert(known.end(), extra.begin(), extra.end());
  std::string name = std::string("catlip ") + cmd;
  if (int rc = check_syntax(a, Syntax{name, "usage: " + name + " URLS... [options]", known, 1, size_t(-1)})) return rc;
  try {
    c.urls = expand_urls(a.positional());
    c.read.require = normalize_exts(a.all("require"));
    c.read.keep = normalize_exts(a.all("keep"));
    c.read.max_member_bytes = static_cast<uint64_t>(a.get_int("max-member-bytes", 64ll << 20));
    c.stream.timeout_s = a.get_double("timeout", 30);
    c.stream.retries = static_cast<int>(a.get_int("retries", 5));
    c.stream.ca_file = a.get("ca-file");
  } catch (const std::exception& e) {
    std::cerr << "catlip " << cmd << ": " << e.what() << "\n";
    return kUsage;
  }
  return kOk;
}

std::string human(double b) {
  const char* u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (b >= 1024 && i < 4) {
    b /= 1024;
    ++i;
  }
  std::ostringstream s;
  s << std::fixed << std::setprecision(i ? 1 : 0) << b << " " << u[i];
  return s.str();
}

size_t field_size(const Field& f) {
  if (auto* b = std::get_if<Bytes>(&f)) return b->data.size();
  if (auto* t = std::get_if<std::string>(&f)) return t->size();
  return 0;
}

// Reads every shard, calling `fn` per sample and `problem` per problem.
// `fn` returns false to stop. Returns the number of shards that could not be opened.
template <class Fn>
int64_t for_each_sample(const Common& c, const ProblemFn& problem, Fn fn) {
  int64_t failed = 0;
  for (size_t i = 0; i < c.urls.size(); ++i) {
    std::unique_ptr<ByteStream> in;
    try {
      in = open_stream(c.urls[i], c.stream);
    } catch (const std::exception& e) {
      problem("error.shard_open", e.what());
      ++failed;
      continue;
    }
    SampleReader r(std::move(in), c.urls[i], static_cast<int64_t>(i), c.read, problem);
    Sample s;
    while (r.next(s))
      if (!fn(s)) return failed;
  }
  return failed;
}

int cmd_shards_ls(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip shards ls URLS... [--limit N] [options]\n\n"
                 "Lists the samples of shards (paths, file://, http(s):// URLs, brace patterns such as\n"
                 "'shard-{000000..000009}.tar', @list.txt files): one line per sample with its key and\n"
                 "fields with sizes; problems go to stderr.\n\n"
                 "  --limit N         stop after N samples\n"
              << kCommonOpts;
    return kOk;
  }
  Common c;
  if (int rc = parse_common("shards ls", a, {"limit"}, c)) return rc;
  long long limit = a.get_int("limit", -1);
  long long n = 0;
  int64_t problems = 0;
  auto problem = [&](const std::string& reason, const std::string& msg) {
    ++problems;
    std::cerr << reason << ": " << msg << "\n";
  };
  std::string cur_url;
  for_each_sample(c, problem, [&](const Sample& s) {
    if (limit >= 0 && n >= limit) return false;
    if (s.origin.url != cur_url) {
      cur_url = s.origin.url;
      std::cout << "# " << cur_url << "\n";
    }
    std::cout << s.key;
    for (auto& [name, f] : s.fields) std::cout << "  " << name << ":" << field_size(f);
    std::cout << "\n";
    ++n;
    return true;
  });
  return problems ? kFailed : kOk;
}

int cmd_shards_stat(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip shards stat URLS... [options]\n\n"
                 "Counts the shards, samples, fields and bytes of a shard set and the problems found,\n"
                 "per reason (the same reasons the shards.source stage counts). Exits 1 when a shard\n"
                 "could not be read completely (error.* reasons).\n\n"
              << kCommonOpts;
    return kOk;
  }
  Common c;
  if (int rc = parse_common("shards stat", a, {}, c)) return rc;
  std::map<std::string, int64_t> reasons;
  std::map<std::string, std::pair<int64_t, int64_t>> fields;  // count, bytes
  int64_t samples = 0, bytes = 0;
  int64_t logged = 0;
  auto problem = [&](const std::string& reason, const std::string& msg) {
    ++reasons[reason];
    if (++logged <= 20) std::cerr << reason << ": " << msg << "\n";
  };
  for_each_sample(c, problem, [&](const Sample& s) {
    ++samples;
    for (auto& [name, f] : s.fields) {
      auto& e = fields[name];
      ++e.first;
      e.second += static_cast<int64_t>(field_size(f));
      bytes += static_cast<int64_t>(field_size(f));
    }
    return true;
  });
  std::cout << "shards " << c.urls.size() << "\n";
  std::cout << "samples " << samples << "\n";
  std::cout << "bytes " << bytes << " (" << human(static_cast<double>(bytes)) << ")\n";
  std::cout << "fields:\n";
  for (auto& [name, e] : fields)
    std::cout << "  " << std::left << std::setw(10) << name << " " << std::right << std::setw(10) << e.first
              << " samples  " << std::setw(12) << e.second << " bytes  (" << human(static_cast<double>(e.second))
              << ")\n";
  std::cout << "problems:" << (reasons.empty() ? " none" : "") << "\n";
  bool errors = false;
  for (auto& [r, n] : reasons) {
    std::cout << "  " << r << " " << n << "\n";
    errors |= r.rfind("error", 0) == 0;
  }
  return errors ? kFailed : kOk;  // skipped samples are data issues; unreadable shards are failures
}

}  // namespace

CATLIP_COMMAND("shards ls", "List the samples (key, fields, sizes) of WebDataset shards", cmd_shards_ls);
CATLIP_COMMAND("shards stat", "Count samples, fields, bytes and problems of a shard set", cmd_shards_stat);
