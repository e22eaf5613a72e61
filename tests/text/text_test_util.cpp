// Helpers of the text tests (text_test_util.h): the reference implementations (NLTK, the
// Perl tagger) run for comparison.
#include "text_test_util.h"

#include "catlip/text/reference.h"

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

std::string make_nltk_data(const TempDir& dir) { return catlip::text::make_nltk_data_dir(dir.path()); }

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
