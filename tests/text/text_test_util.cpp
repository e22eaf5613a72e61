#include "text_test_util.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace catlip::test {

namespace fs = std::filesystem;

bool have_nltk() {
  static int ok = -1;
  if (ok < 0) ok = run_cmd("/usr/bin/python3 -c 'import nltk' 2>/dev/null").exit_code == 0;
  return ok == 1;
}

bool have_lingua() {
  static int ok = -1;
  if (ok < 0) ok = run_cmd("perl -MLingua::EN::Tagger -e 1 2>/dev/null").exit_code == 0;
  return ok == 1;
}

std::string make_nltk_data(const TempDir& dir) {
  std::string root = dir.file("nltk_data");
  std::string wn = root + "/corpora/wordnet";
  if (fs::exists(wn + "/lexnames")) return root;
  fs::create_directories(wn);
  for (auto& e : fs::directory_iterator("/usr/share/wordnet"))
    fs::create_symlink(e.path(), wn + "/" + e.path().filename().string());
  // lexnames(5WN): the 45 lexicographer files of WordNet 3.0, in number
  // order, with their syntactic category (1 noun, 2 verb, 3 adj, 4 adv).
  static const char* kLex[] = {
      "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
      "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
      "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
      "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
      "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
      "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
      "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
      "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"};
  std::ofstream f(wn + "/lexnames");
  int i = 0;
  for (const char* n : kLex) {
    std::string s = n;
    int cat = s.rfind("noun", 0) == 0 ? 1 : s.rfind("verb", 0) == 0 ? 2 : s.rfind("adj", 0) == 0 ? 3 : 4;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%02d\t%s\t%d\n", i++, n, cat);
    f << buf;
  }
  return root;
}

static std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) out.push_back(line);
  return out;
}

static void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream f(path);
  for (auto& l : lines) f << l << '\n';
}

std::vector<std::string> run_nltk(const TempDir& dir, const std::string& mode,
                                  const std::vector<std::string>& in) {
  std::string data = make_nltk_data(dir);
  std::string ip = dir.file("nltk_in_" + mode + ".txt"), op = dir.file("nltk_out_" + mode + ".txt");
  write_lines(ip, in);
  auto r = run_cmd("NLTK_DATA=" + data + " /usr/bin/python3 " CATLIP_TEXT_TEST_DIR "/nltk_ref.py " + mode +
                   " " + ip + " " + op);
  if (r.exit_code != 0) throw std::runtime_error("nltk_ref.py failed: " + r.out);
  return read_lines(op);
}

std::vector<std::string> run_lingua(const TempDir& dir, const std::vector<std::string>& in) {
  std::string ip = dir.file("lingua_in.txt"), op = dir.file("lingua_out.txt");
  write_lines(ip, in);
  auto r = run_cmd("perl " CATLIP_TEXT_TEST_DIR "/lingua_tag.pl < " + ip + " > " + op);
  if (r.exit_code != 0) throw std::runtime_error("lingua_tag.pl failed: " + r.out);
  return read_lines(op);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t st = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(st, i - st));
      st = i + 1;
    }
  return out;
}

std::string join(const std::vector<std::string>& v, char sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += sep;
    s += v[i];
  }
  return s;
}

}  // namespace catlip::test
