// report_util.h - helpers shared by the report's source files (internal to
// catlip_eval_core): finding and reading a run's inputs, number formatting,
// a chart with its one-line caption, and the sections built elsewhere.
#pragma once

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "catlip/eval/report.h"
#include "catlip/json.h"

namespace catlip::eval::report_detail {

// RUN_DIR/NAME, else RUN_DIR/{train,eval,transfer}/NAME; "" when absent.
std::string find_input(const std::string& dir, const std::string& name);
std::string slurp(const std::string& path);
// JSON lines; bad lines (a run killed mid-write) are skipped.
std::vector<json::Value> read_jsonl(const std::string& path);

double getnum(const json::Value& v, const std::string& k, double def = NAN);
std::string getstr(const json::Value& v, const std::string& k);
std::string fmt(double v, int prec = 3);  // "n/a" when not finite

// <figure> with the chart(s) and a one-line caption (HTML, not escaped);
// wide: spans the whole row (small multiples).
std::string figure(const std::string& charts, const std::string& caption, bool wide = false);

// The Training (train_metrics.jsonl) and Pipeline (metrics.jsonl) sections;
// they add their headline cards to `headline`. `tm_path` is the
// train_metrics.jsonl found ("" if none); the metrics.jsonl beside it wins.
void training_section(const std::string& tm_path, ReportInfo& info, std::string& headline, std::ostringstream& out);
void pipeline_section(const std::string& run_dir, const std::string& tm_path, ReportInfo& info, std::ostringstream& out);
std::string card(const std::string& key, const std::string& value);

}  // namespace catlip::eval::report_detail
