// The implementation of catlip/params.h: typed stage parameters and the schema that declares them.
#include "catlip/params.h"

#include <cmath>
#include <sstream>

#include "catlip/stage.h"

namespace catlip {

const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::Bool: return "bool";
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::String: return "string";
    case ParamType::StringList: return "list of strings";
    case ParamType::IntList: return "list of ints";
    case ParamType::FloatList: return "list of floats";
  }
  return "?";
}

ParamType param_value_type(const ParamValue& v) {
  static const ParamType types[] = {ParamType::Bool,       ParamType::Int,     ParamType::Float,
                                    ParamType::String,     ParamType::StringList,
                                    ParamType::IntList,    ParamType::FloatList};
  return types[v.index()];
}

static std::string quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}

static std::string fmt_double(double d) {
  std::ostringstream os;
  os << d;
  std::string s = os.str();
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string param_value_to_string(const ParamValue& v) {
  return std::visit([](auto& x) -> std::string {
    using T = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
    else if constexpr (std::is_same_v<T, int64_t>) return std::to_string(x);
    else if constexpr (std::is_same_v<T, double>) return fmt_double(x);
    else if constexpr (std::is_same_v<T, std::string>) return quote(x);
    else {
      std::string o = "[";
      for (size_t i = 0; i < x.size(); ++i) {
        if (i) o += ", ";
        if constexpr (std::is_same_v<T, std::vector<std::string>>) o += quote(x[i]);
        else if constexpr (std::is_same_v<T, std::vector<double>>) o += fmt_double(x[i]);
        else o += std::to_string(x[i]);
      }
      return o + "]";
    }
  }, v);
}

static std::string check_number(const ParamSpec& s, double d) {
  std::ostringstream os;
  if (std::isnan(d)) return "value is NaN";
  if (s.min && d < *s.min) { os << "value " << d << " is below the minimum " << *s.min; return os.str(); }
  if (s.max && d > *s.max) { os << "value " << d << " is above the maximum " << *s.max; return os.str(); }
  return "";
}

static std::string check_choice(const ParamSpec& s, const std::string& v) {
  if (s.choices.empty()) return "";
  for (auto& c : s.choices) if (c == v) return "";
  std::string o = "value \"" + v + "\" is not one of:";
  for (auto& c : s.choices) o += " \"" + c + "\"";
  return o;
}

std::string ParamSpec::check(const ParamValue& v) const {
  ParamType got = param_value_type(v);
  bool ok = got == type || (type == ParamType::Float && got == ParamType::Int) ||
            (type == ParamType::FloatList && got == ParamType::IntList);
  // An empty list parses as an empty list of strings; accept it for any list.
  if (!ok && (type == ParamType::IntList || type == ParamType::FloatList) &&
      got == ParamType::StringList && std::get<std::vector<std::string>>(v).empty())
    ok = true;
  if (!ok) return std::string("expected ") + param_type_name(type) + ", got " + param_type_name(got);
  if (got == ParamType::Int || got == ParamType::Float)
    return check_number(*this, got == ParamType::Int ? double(std::get<int64_t>(v)) : std::get<double>(v));
  if (got == ParamType::IntList)
    for (auto x : std::get<std::vector<int64_t>>(v)) if (auto e = check_number(*this, double(x)); !e.empty()) return e;
  if (got == ParamType::FloatList)
    for (auto x : std::get<std::vector<double>>(v)) if (auto e = check_number(*this, x); !e.empty()) return e;
  if (got == ParamType::String) return check_choice(*this, std::get<std::string>(v));
  if (got == ParamType::StringList)
    for (auto& x : std::get<std::vector<std::string>>(v)) if (auto e = check_choice(*this, x); !e.empty()) return e;
  return "";
}

const ParamValue& Params::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw ParamError("parameter '" + name + "' was not declared or has no value");
  return it->second;
}

template <class T>
static const T& typed(const ParamValue& v, const std::string& name, const char* want) {
  if (auto p = std::get_if<T>(&v)) return *p;
  throw ParamError("parameter '" + name + "' is a " + param_type_name(param_value_type(v)) + ", not " + want);
}

bool Params::get_bool(const std::string& n) const { return typed<bool>(at(n), n, "bool"); }
int64_t Params::get_int(const std::string& n) const { return typed<int64_t>(at(n), n, "int"); }
double Params::get_float(const std::string& n) const {
  auto& v = at(n);
  if (auto p = std::get_if<int64_t>(&v)) return double(*p);
  return typed<double>(v, n, "float");
}
const std::string& Params::get_string(const std::string& n) const { return typed<std::string>(at(n), n, "string"); }
const std::vector<std::string>& Params::get_strings(const std::string& n) const {
  return typed<std::vector<std::string>>(at(n), n, "list of strings");
}
const std::vector<int64_t>& Params::get_ints(const std::string& n) const {
  auto& v = at(n);
  static const std::vector<int64_t> empty;
  if (auto p = std::get_if<std::vector<std::string>>(&v); p && p->empty()) return empty;
  return typed<std::vector<int64_t>>(v, n, "list of ints");
}
std::vector<double> Params::get_floats(const std::string& n) const {
  auto& v = at(n);
  if (auto p = std::get_if<std::vector<int64_t>>(&v)) return {p->begin(), p->end()};
  if (auto p = std::get_if<std::vector<std::string>>(&v); p && p->empty()) return {};
  return typed<std::vector<double>>(v, n, "list of floats");
}

Params resolve_params(const StageSchema& schema, const std::map<std::string, ParamValue>& given) {
  Params p;
  std::string errors;
  for (auto& [name, v] : given) {
    const ParamSpec* spec = schema.find(name);
    if (!spec) {
      errors += "\n  unknown parameter '" + name + "' for stage type " + schema.type;
      continue;
    }
    if (auto e = spec->check(v); !e.empty()) {
      errors += "\n  parameter '" + name + "': " + e;
      continue;
    }
    p.set(name, v);
  }
  for (auto& spec : schema.params) {
    if (given.count(spec.name)) continue;
    if (spec.default_value) p.set(spec.name, *spec.default_value);
    else if (spec.required) errors += "\n  missing required parameter '" + spec.name + "'";
  }
  if (!errors.empty()) throw std::invalid_argument("invalid parameters for " + schema.type + ":" + errors);
  return p;
}

void bind_params(const StageSchema& schema, const Params& params, Stage& stage) {
  for (auto& spec : schema.params) {
    if (!spec.setter) continue;
    auto it = params.values().find(spec.name);
    if (it == params.values().end()) continue;  // optional without default: the member keeps its initializer
    try {
      spec.setter(stage, it->second);
    } catch (const std::bad_variant_access&) {
      throw std::invalid_argument(schema.type + ": parameter '" + spec.name + "' is a " +
                                  param_type_name(param_value_type(it->second)) + ", not " +
                                  param_type_name(spec.type));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(schema.type + ": parameter '" + spec.name + "': " + e.what());
    }
  }
}

namespace detail {
void check_fits(int64_t x, long double lo, long double hi) {
  auto v = static_cast<long double>(x);
  if (v < lo || v > hi) {
    std::ostringstream os;
    os << "value " << x << " does not fit (" << lo << ".." << hi << ")";
    throw std::invalid_argument(os.str());
  }
}
}  // namespace detail

}  // namespace catlip
