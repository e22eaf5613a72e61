// The implementation of catlip/json.h: JSON for catlip's own files, on nlohmann-json.
#include "catlip/json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace catlip::json {

namespace {

struct TooDeep {};

// "<what>: invalid JSON at byte B (line L, column C): <reason>"
std::string parse_error_text(const std::string& what, const std::string& text, const nlohmann::json::parse_error& e) {
  const size_t byte = e.byte;  // 1-based; size + 1 at the end of the input
  size_t line = 1, col = 0;
  for (size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
    if (text[i] == '\n') ++line, col = 0;
    else ++col;
  }
  // nlohmann: "[json.exception.parse_error.101] parse error at line 1, column 2: <reason>"
  std::string reason = e.what();
  auto p = reason.find("parse error");
  if (p != std::string::npos) {
    auto colon = reason.find(": ", p);
    reason = colon == std::string::npos ? reason.substr(p) : reason.substr(colon + 2);
  }
  return (what.empty() ? "" : what + ": ") + "invalid JSON at byte " + std::to_string(byte) + " (line " + std::to_string(line) + ", column " +
         std::to_string(col + 1) + "): " + reason;
}

const char* kind(const Value& v) { return v.type_name(); }

[[noreturn]] void expected(const char* what, const Value& v) {
  throw std::runtime_error(std::string("expected ") + what + ", got " + kind(v));
}

template <class J>
void write(std::string& o, const J& v, int depth, int expand) {
  if (!v.is_structured() || v.empty()) {
    o += v.dump(-1, ' ', false, J::error_handler_t::replace);
    return;
  }
  const bool obj = v.is_object(), lines = depth < expand;
  o += obj ? '{' : '[';
  bool first = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!first) o += lines ? "," : ", ";
    first = false;
    if (lines) {
      o += '\n';
      o.append(size_t(2 * (depth + 1)), ' ');
    }
    if (obj) {
      o += J(it.key()).dump(-1, ' ', false, J::error_handler_t::replace);
      o += ": ";
    }
    write(o, *it, depth + 1, expand);
  }
  if (lines) {
    o += '\n';
    o.append(size_t(2 * depth), ' ');
  }
  o += obj ? '}' : ']';
}

template <class J>
std::string dump_any(const J& v, int expand) {
  if (expand < 0) return v.dump(-1, ' ', false, J::error_handler_t::replace);
  std::string o;
  write(o, v, 0, expand);
  return o;
}

double reparse(const char* fmt, int prec, double v) {
  if (!std::isfinite(v)) return v;
  char b[64];
  std::snprintf(b, sizeof b, fmt, prec, v);
  return std::strtod(b, nullptr);
}

}  // namespace

Value parse(const std::string& text, const std::string& what, int max_depth) {
  try {
    if (max_depth <= 0) return Value::parse(text);
    return Value::parse(text, [max_depth](int depth, Value::parse_event_t ev, Value&) {
      if ((ev == Value::parse_event_t::object_start || ev == Value::parse_event_t::array_start) && depth >= max_depth)
        throw TooDeep{};
      return true;
    });
  } catch (const Value::parse_error& e) {
    throw std::runtime_error(parse_error_text(what, text, e));
  } catch (const TooDeep&) {
    throw std::runtime_error((what.empty() ? "" : what + ": ") + "invalid JSON: nested deeper than " + std::to_string(max_depth) + " levels");
  }
}

Value read_file(const std::string& path, int max_depth) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream s;
  s << f.rdbuf();
  if (f.bad()) throw std::runtime_error("cannot read " + path);
  return parse(s.str(), path, max_depth);
}

std::string dump(const Ordered& v, int expand) { return dump_any(v, expand); }
std::string dump(const Value& v, int expand) { return dump_any(v, expand); }

const Value& object(const Value& v) {
  if (!v.is_object()) expected("an object", v);
  return v;
}
const Value& array(const Value& v) {
  if (!v.is_array()) expected("an array", v);
  return v;
}
const std::string& string(const Value& v) {
  if (!v.is_string()) expected("a string", v);
  return v.get_ref<const std::string&>();
}
int64_t integer(const Value& v) {
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u > uint64_t(INT64_MAX)) throw std::runtime_error("integer " + std::to_string(u) + " out of range");
    return int64_t(u);
  }
  if (!v.is_number_integer()) expected("an integer", v);
  return v.get<int64_t>();
}
double number(const Value& v) {
  if (!v.is_number()) expected("a number", v);
  return v.get<double>();
}
const Value* find(const Value& v, const std::string& key) {
  if (!v.is_object()) return nullptr;
  auto it = v.find(key);
  return it == v.end() ? nullptr : &*it;
}
const Value& at(const Value& v, const std::string& key) {
  const Value* x = find(object(v), key);
  if (!x) throw std::runtime_error("missing '" + key + "'");
  return *x;
}

double round_sig(double v, int digits) { return reparse("%.*g", digits, v); }
double round_fixed(double v, int decimals) { return reparse("%.*f", decimals, v); }

}  // namespace catlip::json
