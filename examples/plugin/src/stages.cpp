// The stages of the example plugin `myplugin` (stages.h): words (a source), upper (a
// transform) and save (a sink), each parameter declared once and bound to its member.
#include "stages.h"

#include <cctype>
#include <sstream>
#include <stdexcept>

namespace myplugin {

using namespace catlip;

StageSchema Words::schema() {
  StageSchema s;
  s.type = "myplugin.words";  // "<plugin>.<name>"
  s.kind = StageKind::Source;
  s.doc = "Emits one sample per word of a text, in the text field 'field'. An example source.";
  s.writes = {"txt"};
  s.params = {
      // Declared once: bound to the member that holds it, set before configure().
      Param("text", &Words::text_).def("the quick brown fox").describe("Words to emit, space-separated"),
      Param("repeat", &Words::repeat_).def(1).range(1, 1000000).describe("How many times to emit the words"),
      Param("field", &Words::field_).def("txt").describe("Text field to write each word to"),
  };
  return s;
}

void Words::configure() {
  std::istringstream in(text_);
  for (std::string w; in >> w;) words_.push_back(w);
  if (words_.empty()) throw std::invalid_argument("text has no words");
  end_ = static_cast<int64_t>(words_.size()) * repeat_;
  next_ = ctx().replica();  // replica r of n emits items r, r+n, r+2n, ...
  step_ = ctx().replicas();
  ctx().set_total(next_ < end_ ? (end_ - next_ + step_ - 1) / step_ : 0);
}

bool Words::produce(Emitter& out) {
  if (next_ >= end_) return false;
  Sample s;
  s.key = "word" + std::to_string(next_);
  s.origin = Origin{"words", 0, next_, 0};
  s.set_text(field_, words_[static_cast<size_t>(next_) % words_.size()]);
  out.emit(std::move(s));
  next_ += step_;
  return next_ < end_;
}

StageSchema Upper::schema() {
  StageSchema s;
  s.type = "myplugin.upper";
  s.kind = StageKind::Transform;
  s.doc = "Upper-cases a text field. An example transform.";
  s.reads = {"txt"};
  s.writes = {"txt"};
  s.params = {Param("field", &Upper::field_).def("txt").describe("Text field to change")};
  return s;
}

void Upper::process(Sample&& s, Emitter& out) {
  const std::string* t = s.text(field_);
  if (!t) {
    ctx().count("skipped.no_text");  // bad input: counted and skipped, not fatal
    return;
  }
  std::string u = *t;
  for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  s.set_text(field_, std::move(u));
  out.emit(std::move(s));
}

StageSchema Save::schema() {
  StageSchema s;
  s.type = "myplugin.save";
  s.kind = StageKind::Sink;
  s.doc = "Writes '<key> <text>' per sample to <run_dir>/<file>.<replica>. An example sink.";
  s.reads = {"txt"};
  s.params = {
      Param("file", &Save::file_).def("words.txt").describe("File name in the run directory"),
      Param("field", &Save::field_).def("txt").describe("Text field to write"),
  };
  return s;
}

void Save::configure() {
  std::string path = ctx().run_dir() + "/" + file_ + "." + std::to_string(ctx().replica());
  out_.open(path);
  if (!out_) throw std::runtime_error("cannot write " + path);
}

void Save::process(Sample&& s, Emitter&) {
  const std::string* t = s.text(field_);
  out_ << s.key << " " << (t ? *t : std::string()) << "\n";
}

}  // namespace myplugin
