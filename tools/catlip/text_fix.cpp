// catlip text fix: ftfy's fix_text (catlip::text::fix_text) on stdin, for people
// and for the ftfy parity check (tools/python/ftfy_parity.py); text captions.
#include <iostream>
#include <string>

#include "catlip/text/captions.h"
#include "catlip/text/fix_text.h"
#include "cli.h"

using namespace catlip;

namespace {

const char* kFixUsage =
    "usage: catlip text fix [--lp] [--no-html]\n"
    "  Reads text on stdin and writes it through fix_text (ftfy's fix_text).\n"
    "  Default: line by line (each line fixed on its own, '\\n' kept).\n"
    "  --lp       length-prefixed records both ways: \"<bytes>\\n\" then the bytes\n"
    "             (any text, newlines included; what tools/python/ftfy_parity.py uses)\n"
    "  --no-html  leave HTML entities alone (ftfy's unescape_html=False)\n";

int cmd_text_fix(int argc, char** argv) {
  if (cli::wants_help(argc, argv)) {
    std::cout << kFixUsage;
    return cli::kOk;
  }
  cli::Args a(argc, argv, {"lp", "no-html"});
  cli::Syntax syn{"catlip text fix", "usage: catlip text fix [--lp] [--no-html]", {"lp", "no-html"}, 0, 0};
  if (int rc = cli::check_syntax(a, syn); rc != cli::kOk) return rc;
  text::FixTextOptions opt;
  opt.unescape_html = !a.has("no-html");
  std::ios::sync_with_stdio(false);
  std::string line;
  if (!a.has("lp")) {
    while (std::getline(std::cin, line)) std::cout << text::fix_text(line, opt) << '\n';
    return cli::kOk;
  }
  std::string rec;
  while (std::getline(std::cin, line)) {
    size_t n = 0;
    try {
      n = std::stoul(line);
    } catch (const std::exception&) {
      std::cerr << "catlip text fix: bad record header '" << line << "'\n";
      return cli::kFailed;
    }
    rec.resize(n);
    if (!std::cin.read(rec.data(), static_cast<std::streamsize>(n))) {
      std::cerr << "catlip text fix: truncated record\n";
      return cli::kFailed;
    }
    std::string r = text::fix_text(rec, opt);
    std::cout << r.size() << '\n' << r;
  }
  std::cout.flush();
  return cli::kOk;
}

int cmd_text_captions(int argc, char** argv) {
  cli::Args a(argc, argv);
  cli::Syntax syn{"catlip text captions", "usage: catlip text captions N [--seed S]", {"seed"}, 1, 1};
  if (cli::wants_help(argc, argv)) {
    std::cout << syn.usage << "\n  Writes N synthetic captions (the ones tests and benches use), one a line.\n";
    return cli::kOk;
  }
  if (int rc = cli::check_syntax(a, syn); rc != cli::kOk) return rc;
  size_t n = 0;
  try {
    n = std::stoul(a.positional().at(0));
  } catch (const std::exception&) {
    std::cerr << "catlip text captions: N must be a count\n" << syn.usage << "\n";
    return cli::kUsage;
  }
  for (const auto& c : text::generate_captions(n, static_cast<uint64_t>(a.get_int("seed", 1)))) std::cout << c << '\n';
  return cli::kOk;
}

}  // namespace

CATLIP_COMMAND("text fix", "Run ftfy's fix_text (catlip's C++ port) over stdin", cmd_text_fix);
CATLIP_COMMAND("text captions", "Write N synthetic captions, one a line", cmd_text_captions);
