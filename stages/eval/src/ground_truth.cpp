// The implementation of catlip/eval/ground_truth.h: a sample's `.json` objects (and class
// label) mapped to vocabulary rows.
#include "catlip/eval/ground_truth.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "catlip/json.h"

namespace catlip::eval {

GroundTruth parse_ground_truth(const std::string& text, const EvalVocab& vocab) {
  GroundTruth g;
  try {
    const json::Value v = json::parse(text, "");
    if (!v.is_object()) {
      g.error = "json is not an object";
      return g;
    }
    auto add_list = [&](const char* key, bool by_wnid) {
      const json::Value* list = json::find(v, key);
      if (!list || !list->is_array()) return false;
      g.present = true;
      for (auto& e : *list) {
        if (!e.is_string()) continue;
        const std::string& s = json::string(e);
        g.names.push_back(s);
        int64_t r = by_wnid ? vocab.index_of_wnid(s) : vocab.index_of_lemma(s);
        if (r >= 0) g.rows.push_back(r);
        else ++g.outside;
      }
      return true;
    };
    if (!add_list("wnids", true)) add_list("objects", false);
  } catch (const std::exception& e) {
    g.error = e.what();
  }
  std::sort(g.rows.begin(), g.rows.end());
  g.rows.erase(std::unique(g.rows.begin(), g.rows.end()), g.rows.end());
  return g;
}

int64_t parse_class_label(const std::string* cls, const std::string* text,
                          const std::vector<std::string>& class_wnids,
                          const std::vector<std::string>& class_names) {
  const int64_t n = int64_t(class_wnids.size());
  if (cls) {
    try {
      size_t used = 0;
      long long v = std::stoll(*cls, &used);
      // "3" or "3\n" is class 3; "3abc" is not a class index.
      bool whole = cls->find_first_not_of(" \t\r\n", used) == std::string::npos;
      if (whole && v >= 0 && v < n) return v;
    } catch (const std::exception&) {
      // not an integer: fall through to the json's wnid or class name
    }
  }
  if (!text) return -1;
  try {
    const json::Value v = json::parse(*text, "");
    for (const char* k : {"class_wnid", "wnid"}) {
      const json::Value* w = json::find(v, k);
      if (w && w->is_string()) {
        auto f = std::find(class_wnids.begin(), class_wnids.end(), json::string(*w));
        if (f != class_wnids.end()) return f - class_wnids.begin();
      }
    }
    const json::Value* cl = json::find(v, "class");
    if (cl && cl->is_string()) {
      std::string c = json::string(*cl);
      for (int64_t i = 0; i < int64_t(class_names.size()); ++i) {
        std::string nm = class_names[size_t(i)];
        std::replace(nm.begin(), nm.end(), '_', ' ');
        std::string cc = c;
        std::replace(cc.begin(), cc.end(), '_', ' ');
        if (nm == cc) return i;
      }
    }
  } catch (const std::exception&) {
    // not JSON: the sample has no class label (-1); callers count it as skipped
  }
  return -1;
}

}  // namespace catlip::eval
