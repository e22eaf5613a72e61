// catlip/train/mini_json.h - the small JSON subset safetensors headers use.
//
// Safetensors headers are a flat object of {dtype, shape, data_offsets}
// entries plus a "__metadata__" object of strings. This parser handles full
// JSON syntax (objects, arrays, strings with escapes, numbers, true/false/null)
// but keeps numbers as int64 or double; it exists so the trainer needs no JSON
// dependency. Errors throw std::runtime_error with the byte offset.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace catlip::train::json {

struct Value;
using Object = std::map<std::string, Value>;
using Array = std::vector<Value>;

struct Value {
  // null, bool, integer, double, string, array, object
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, std::shared_ptr<Array>,
               std::shared_ptr<Object>>
      v = nullptr;

  bool is_object() const { return std::holds_alternative<std::shared_ptr<Object>>(v); }
  bool is_array() const { return std::holds_alternative<std::shared_ptr<Array>>(v); }
  bool is_string() const { return std::holds_alternative<std::string>(v); }
  bool is_int() const { return std::holds_alternative<int64_t>(v); }
  const Object& object() const;  // throw if another kind
  const Array& array() const;
  const std::string& string() const;
  int64_t integer() const;
};

Value parse(const std::string& text);
// Escapes and quotes a string for output.
std::string quote(const std::string& s);

}  // namespace catlip::train::json
