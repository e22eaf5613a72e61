#include "catlip/train/mini_json.h"

#include <cstdio>
#include <stdexcept>

namespace catlip::train::json {

const Object& Value::object() const {
  if (!is_object()) throw std::runtime_error("json: expected an object");
  return *std::get<std::shared_ptr<Object>>(v);
}
const Array& Value::array() const {
  if (!is_array()) throw std::runtime_error("json: expected an array");
  return *std::get<std::shared_ptr<Array>>(v);
}
const std::string& Value::string() const {
  if (!is_string()) throw std::runtime_error("json: expected a string");
  return std::get<std::string>(v);
}
int64_t Value::integer() const {
  if (!is_int()) throw std::runtime_error("json: expected an integer");
  return std::get<int64_t>(v);
}

namespace {

struct Parser {
  const std::string& s;
  size_t i = 0;
  int depth = 0;

  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("json: " + what + " at byte " + std::to_string(i));
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  }
  char peek() {
    ws();
    if (i >= s.size()) fail("unexpected end");
    return s[i];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i;
  }
  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) { out += char(0xC0 | (cp >> 6)); out += char(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18)); out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F));
    }
  }
  uint32_t hex4() {
    if (i + 4 > s.size()) fail("short \\u escape");
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      cp <<= 4;
      if (c >= '0' && c <= '9') cp |= c - '0';
      else if (c >= 'a' && c <= 'f') cp |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') cp |= c - 'A' + 10;
      else fail("bad \\u escape");
    }
    return cp;
  }
  std::string str() {
    expect('"');
    std::string out;
    while (true) {
      if (i >= s.size()) fail("unterminated string");
      char c = s[i++];
      if (c == '"') return out;
      if (c != '\\') { out += c; continue; }
      if (i >= s.size()) fail("unterminated escape");
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= s.size() && s[i] == '\\' && s[i + 1] == 'u') {
            i += 2;
            uint32_t lo = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }
  Value value() {
    if (++depth > 64) fail("nesting too deep");
    Value out;
    char c = peek();
    if (c == '{') {
      ++i;
      auto obj = std::make_shared<Object>();
      if (peek() == '}') ++i;
      else
        while (true) {
          std::string k = str();
          expect(':');
          (*obj)[k] = value();
          if (peek() == ',') { ++i; continue; }
          expect('}');
          break;
        }
      out.v = obj;
    } else if (c == '[') {
      ++i;
      auto arr = std::make_shared<Array>();
      if (peek() == ']') ++i;
      else
        while (true) {
          arr->push_back(value());
          if (peek() == ',') { ++i; continue; }
          expect(']');
          break;
        }
      out.v = arr;
    } else if (c == '"') {
      out.v = str();
    } else if (s.compare(i, 4, "true") == 0) { i += 4; out.v = true; }
    else if (s.compare(i, 5, "false") == 0) { i += 5; out.v = false; }
    else if (s.compare(i, 4, "null") == 0) { i += 4; out.v = nullptr; }
    else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i;
      bool is_float = false;
      if (s[i] == '-') ++i;
      while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' ||
                              s[i] == 'E' || s[i] == '+' || s[i] == '-')) {
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') is_float = true;
        ++i;
      }
      std::string num = s.substr(start, i - start);
      try {
        if (is_float) out.v = std::stod(num);
        else out.v = static_cast<int64_t>(std::stoll(num));
      } catch (const std::exception&) {
        fail("bad number '" + num + "'");
      }
    } else {
      fail(std::string("unexpected character '") + c + "'");
    }
    --depth;
    return out;
  }
};

}  // namespace

Value parse(const std::string& text) {
  Parser p{text};
  Value v = p.value();
  p.ws();
  if (p.i != text.size()) p.fail("trailing characters");
  return v;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace catlip::train::json
