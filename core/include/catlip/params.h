// catlip/params.h - typed stage parameters and the schema that declares them.
//
// Every stage declares its parameters (name, type, default, required, doc,
// range or choices) beside its implementation. The graph validator checks a
// config against these schemas before any process starts, and `catlip
// inspect` prints them; at run time the stage reads already-validated values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace catlip {

enum class ParamType { Bool, Int, Float, String, StringList, IntList, FloatList };
const char* param_type_name(ParamType t);

using ParamValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>,
                                std::vector<int64_t>, std::vector<double>>;

ParamType param_value_type(const ParamValue& v);
// Human/TOML-ish rendering, e.g. `3`, `"abc"`, `["a", "b"]`.
std::string param_value_to_string(const ParamValue& v);

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::String;
  std::optional<ParamValue> default_value;  // absent: no default
  bool required = false;
  std::string doc;
  std::optional<double> min, max;  // inclusive bounds for Int/Float (and list elements)
  std::vector<std::string> choices;  // allowed values for String (and list elements)

  // Builder helpers: Param("count", ParamType::Int).def(int64_t{10}).range(0, 100).doc("...")
  ParamSpec& def(ParamValue v) { default_value = std::move(v); return *this; }
  ParamSpec& range(double lo, double hi) { min = lo; max = hi; return *this; }
  ParamSpec& at_least(double lo) { min = lo; return *this; }
  ParamSpec& one_of(std::vector<std::string> c) { choices = std::move(c); return *this; }
  ParamSpec& require() { required = true; return *this; }
  ParamSpec& describe(std::string d) { doc = std::move(d); return *this; }

  // Checks a value against type, range and choices. Returns "" if fine, else
  // a message such as "expected int, got string" or "value 0 below minimum 1".
  // Ints are accepted where floats are expected.
  std::string check(const ParamValue& v) const;
};

inline ParamSpec Param(std::string name, ParamType type) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = type;
  return p;
}

// Thrown by Params getters on programming errors (asking for an undeclared
// parameter or the wrong type): a stage bug, not a user config error.
struct ParamError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Validated values for one stage instance (defaults already filled in).
class Params {
 public:
  void set(const std::string& name, ParamValue v) { values_[name] = std::move(v); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  const std::map<std::string, ParamValue>& values() const { return values_; }

  bool get_bool(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;  // accepts int values too
  const std::string& get_string(const std::string& name) const;
  const std::vector<std::string>& get_strings(const std::string& name) const;
  const std::vector<int64_t>& get_ints(const std::string& name) const;
  std::vector<double> get_floats(const std::string& name) const;

 private:
  const ParamValue& at(const std::string& name) const;
  std::map<std::string, ParamValue> values_;
};

}  // namespace catlip
