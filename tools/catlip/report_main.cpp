// catlip report RUN_DIR: one self-contained HTML report of a run (see
// stages/eval/include/catlip/eval/report.h).
#include <iostream>

#include "catlip/eval/report.h"
#include "cli.h"

using namespace catlip::cli;

namespace {

int cmd_report(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip report RUN_DIR [--out FILE.html]\n\n"
                 "Writes one self-contained HTML file (inline SVG charts, images as base64 PNG) from\n"
                 "what RUN_DIR holds (or its train/, eval/, transfer/ subdirectories, as the quickstart\n"
                 "lays them out): loss and lr curves (train_metrics.jsonl), throughput, busy % and\n"
                 "input wait per stage (metrics.jsonl), held-out mAP/F1/P@k and AP per synset\n"
                 "(eval.json, eval_per_synset.tsv), Transfer Init vs random init (transfer.json) and a\n"
                 "grid of held-out images with caption synsets and top predictions\n"
                 "(eval_samples.json). Default output: RUN_DIR/report.html.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip report", "usage: catlip report RUN_DIR [--out FILE.html]", {"out"}, 1, 1})) return rc;
  if (!a.error().empty() || a.positional().size() != 1 || !a.unknown({"out"}).empty()) {
    std::cerr << "catlip report: expected RUN_DIR [--out FILE] (see --help)\n";
    return kUsage;
  }
  try {
    auto info = catlip::eval::write_report(a.positional()[0], a.get("out"));
    std::cout << "wrote " << info.html_path << " (" << info.charts << " charts, " << info.images << " images";
    if (!info.missing.empty()) {
      std::cout << "; not found:";
      for (auto& m : info.missing) std::cout << " " << m;
    }
    std::cout << ")\n";
    return kOk;
  } catch (const std::exception& e) {
    std::cerr << "catlip report: " << e.what() << "\n";
    return kFailed;
  }
}

}  // namespace

CATLIP_COMMAND("report", "Write a self-contained HTML report of a run (charts, metrics, images)", cmd_report);
