// catlip/params.h - typed stage parameters and the schema that declares them.
//
// Every stage declares its parameters (name, type, default, required, doc,
// range or choices) beside its implementation. The graph validator checks a
// config against these schemas before any process starts, and `catlip
// inspect` prints them; at run time the stage reads already-validated values.
//
// A parameter is declared once (as in GStreamer's properties or DALI's
// operator schema): bind it to the member that holds it and the runtime sets
// that member before configure() is called,
//
//   s.params = {
//       Param("count", &CounterSource::count_).def(1000).at_least(0).describe("Number of items"),
//       Param("timeout_s", &ShardSource::stream_, &StreamOptions::timeout_s).def(30.0),  // a member's field
//       Param("depth", &TrainStage::opt_, &TrainOptions::model, &ViTConfig::depth),      // any depth
//       Param("batch_size", &EvalStage::impl_, &EvalStage::Impl::batch).def(64),        // through a pimpl
//       Param("mode", &DecodeStage::mode_).values({{"train", Mode::Train}, {"eval", Mode::Eval}})
//           .def(Mode::Train),                                                        // an enum
//   };
//
// The type is deduced from the member (bool: bool; int64_t, int, size_t...:
// int; double, float: float; std::string and enums: string; std::vector of
// string, of an integer, of a floating type: list), and a default must have
// that type (a mistyped default does not compile). A value that is derived
// when left at a sentinel ("0 = from model") is bound like any other and
// resolved in configure(). Unbound parameters, Param("name", ParamType::...),
// remain for stages whose parameters are not known at compile time (e.g. a
// schema read from a child process); Stage::params() holds every value.
#pragma once

#include <initializer_list>
#include <type_traits>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace catlip {

class Stage;
struct StageSchema;

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
  // A path that must exist before the run starts (catlip validate and run
  // check it, unless --no-check-files): a readable file, a directory, or
  // either. Empty values are not checked.
  enum class Exists : uint8_t { No, File, Dir, Any };
  Exists must_exist = Exists::No;
  // Bound parameters (Param("name", &Class::member_)): stores the resolved
  // value into the member of the concrete stage; see bind_params(). Throws
  // std::invalid_argument when the value does not fit the member (e.g. an
  // int parameter bound to an `int` member, given 1e12).
  std::function<void(Stage&, const ParamValue&)> setter;

  // Builder helpers: Param("count", ParamType::Int).def(int64_t{10}).range(0, 100).doc("...")
  ParamSpec& def(ParamValue v) { default_value = std::move(v); return *this; }
  ParamSpec& range(double lo, double hi) { min = lo; max = hi; return *this; }
  ParamSpec& at_least(double lo) { min = lo; return *this; }
  ParamSpec& one_of(std::vector<std::string> c) { choices = std::move(c); return *this; }
  ParamSpec& require() { required = true; return *this; }
  ParamSpec& describe(std::string d) { doc = std::move(d); return *this; }
  ParamSpec& existing_file() { must_exist = Exists::File; return *this; }
  ParamSpec& existing_dir() { must_exist = Exists::Dir; return *this; }
  ParamSpec& existing_path() { must_exist = Exists::Any; return *this; }

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

namespace detail {
template <class T> struct is_vector : std::false_type {};
template <class E, class A> struct is_vector<std::vector<E, A>> : std::true_type {};
template <class T> struct list_elem { struct none {}; using type = none; };
template <class E, class A> struct list_elem<std::vector<E, A>> { using type = E; };
template <class T> using plain_t = std::remove_cv_t<std::remove_reference_t<T>>;

template <class E>
constexpr bool is_number = (std::is_integral_v<E> || std::is_floating_point_v<E>) && !std::is_same_v<E, bool>;
template <class E>
constexpr bool is_list_elem = std::is_same_v<E, std::string> || is_number<E>;
template <class M>
constexpr bool is_list_member() {
  if constexpr (is_vector<M>::value) return is_list_elem<typename list_elem<M>::type>;
  else return false;
}
}  // namespace detail

// C++ types a parameter can be bound to (this header stays C++17: plugins may
// be built with it).
template <class M>
constexpr bool is_param_member = std::is_same_v<M, bool> || detail::is_number<M> || std::is_same_v<M, std::string> ||
                                 detail::is_list_member<M>();

template <class M>
constexpr ParamType param_type_of() {
  static_assert(is_param_member<M>,
                "a parameter binds to bool, an integer, a floating type, std::string or a std::vector of "
                "std::string, of an integer or of a floating type");
  if constexpr (std::is_same_v<M, bool>) return ParamType::Bool;
  else if constexpr (std::is_integral_v<M>) return ParamType::Int;
  else if constexpr (std::is_floating_point_v<M>) return ParamType::Float;
  else if constexpr (std::is_same_v<M, std::string>) return ParamType::String;
  else {
    using E = typename detail::list_elem<M>::type;
    if constexpr (std::is_same_v<E, std::string>) return ParamType::StringList;
    else if constexpr (std::is_integral_v<E>) return ParamType::IntList;
    else return ParamType::FloatList;
  }
}

// A default value of type V may be given for a member of type M: same kind
// (no bool for a number, no number for a string), and no float for an integer.
template <class M, class V, class P = detail::plain_t<V>>
constexpr bool param_default_for =
    (std::is_same_v<M, bool> && std::is_same_v<P, bool>) ||
    (std::is_integral_v<M> && !std::is_same_v<M, bool> && std::is_integral_v<P> && !std::is_same_v<P, bool>) ||
    (std::is_floating_point_v<M> && detail::is_number<P>) ||
    (std::is_same_v<M, std::string> && std::is_constructible_v<std::string, V> && !std::is_arithmetic_v<P>) ||
    (detail::is_vector<M>::value && std::is_same_v<P, M>);

// The ParamValue of a member value (integers as int64, floats as double).
template <class M>
ParamValue to_param_value(const M& v) {
  if constexpr (std::is_same_v<M, bool> || std::is_same_v<M, std::string> ||
                std::is_same_v<M, std::vector<std::string>>)
    return v;
  else if constexpr (std::is_integral_v<M>) return static_cast<int64_t>(v);
  else if constexpr (std::is_floating_point_v<M>) return static_cast<double>(v);
  else {
    using E = typename detail::list_elem<M>::type;
    if constexpr (std::is_integral_v<E>) return std::vector<int64_t>(v.begin(), v.end());
    else return std::vector<double>(v.begin(), v.end());
  }
}

namespace detail {
// Throws std::invalid_argument when x does not fit an integer member.
void check_fits(int64_t x, long double lo, long double hi);
template <class E>
E element_from(int64_t x) {
  if constexpr (std::is_integral_v<E>)
    check_fits(x, static_cast<long double>(std::numeric_limits<E>::min()),
               static_cast<long double>(std::numeric_limits<E>::max()));
  return static_cast<E>(x);
}
}  // namespace detail

// A resolved value as a member's type. Ints are accepted for floats, an
// empty list for any list (as ParamSpec::check does). Throws
// std::bad_variant_access on another type, std::invalid_argument when an
// integer does not fit.
template <class M>
M from_param_value(const ParamValue& v) {
  if constexpr (std::is_same_v<M, bool> || std::is_same_v<M, std::string>) return std::get<M>(v);
  else if constexpr (std::is_integral_v<M>) return detail::element_from<M>(std::get<int64_t>(v));
  else if constexpr (std::is_floating_point_v<M>) {
    if (auto i = std::get_if<int64_t>(&v)) return static_cast<M>(*i);
    return static_cast<M>(std::get<double>(v));
  } else {
    using E = typename detail::list_elem<M>::type;
    M out;
    if constexpr (std::is_same_v<E, std::string>) {
      out = std::get<std::vector<std::string>>(v);
    } else if (auto ints = std::get_if<std::vector<int64_t>>(&v)) {
      for (auto x : *ints) out.push_back(detail::element_from<E>(x));
    } else if (auto doubles = std::get_if<std::vector<double>>(&v)) {
      if constexpr (std::is_floating_point_v<E>) out.assign(doubles->begin(), doubles->end());
      else (void)std::get<std::vector<int64_t>>(v);  // throws: a float list for an int member
    } else if (!std::get<std::vector<std::string>>(v).empty()) {
      (void)std::get<std::vector<int64_t>>(v);  // throws: only an empty list parses as strings
    }
    return out;
  }
}

namespace detail {
// One step of a member path: a member object, or what a unique_ptr member
// points to (a pimpl; the stage's constructor must have created it).
template <class T> T& deref(T& x) { return x; }
template <class T, class D> T& deref(std::unique_ptr<T, D>& p) { return *p; }
template <class Obj> Obj& walk(Obj& o) { return o; }
template <class Obj, class C, class M, class... Rest>
decltype(auto) walk(Obj& o, M C::*m, Rest... rest) {
  return walk(deref(o.*m), rest...);
}
template <class S, class... Path>
using leaf_t = std::remove_reference_t<decltype(walk(std::declval<S&>(), std::declval<Path>()...))>;

// Named values: a string parameter whose names map to values of the member
// (an enum, or e.g. "repair"/"reject" for a bool), given by .values().
template <class M> struct NamedValues {
  std::vector<std::pair<std::string, M>> entries;
  M lookup(const std::string& name) const {
    for (auto& [n, v] : entries)
      if (n == name) return v;
    std::string all;
    for (auto& e : entries) all += (all.empty() ? "" : ", ") + e.first;
    throw std::invalid_argument("'" + name + "' is not one of " + all);
  }
  const std::string& name_of(const M& v) const {
    for (auto& e : entries)
      if (e.second == v) return e.first;
    throw std::invalid_argument("a default without a name in .values()");
  }
};
}  // namespace detail

// A parameter bound to a member of type M: the builder of ParamSpec whose
// def() takes only values of the member's type.
template <class M>
struct BoundParam : ParamSpec {
  static_assert(is_param_member<M> || std::is_enum_v<M>,
                "a parameter binds to bool, an integer, a floating type, std::string, an enum (with "
                ".values()) or a std::vector of std::string, of an integer or of a floating type");
  // Only a value of the member's kind compiles (see param_default_for); the
  // untyped ParamSpec::def(ParamValue) is hidden. With .values(), the
  // default is written as its name.
  template <class V, std::enable_if_t<param_default_for<M, V> || std::is_same_v<detail::plain_t<V>, M>, int> = 0>
  BoundParam& def(V&& v) {
    M m = static_cast<M>(std::forward<V>(v));
    if (!named->entries.empty()) default_value = named->name_of(m);
    else if constexpr (!std::is_enum_v<M>) default_value = to_param_value<M>(m);
    else throw std::logic_error("parameter '" + name + "': an enum takes .values() before .def()");
    return *this;
  }
  // Lists: .def({"a", "b"}), .def({1, 2}), .def({}).
  template <class L = M, std::enable_if_t<detail::is_vector<L>::value, int> = 0>
  BoundParam& def(std::initializer_list<typename detail::list_elem<L>::type> v) {
    default_value = to_param_value<M>(M(v));
    return *this;
  }
  // Named values: .values({{"sdpa", Attention::Sdpa}, {"math", Attention::Math}}).def(Attention::Sdpa).
  // The parameter becomes a string whose names are its choices (checked by
  // validate, listed by catlip inspect); enums need it; values() comes
  // before def().
  BoundParam& values(std::vector<std::pair<std::string, M>> v) {
    named->entries = std::move(v);
    type = ParamType::String;
    choices.clear();
    for (auto& e : named->entries) choices.push_back(e.first);
    return *this;
  }
  BoundParam& range(double lo, double hi) { ParamSpec::range(lo, hi); return *this; }
  BoundParam& at_least(double lo) { ParamSpec::at_least(lo); return *this; }
  BoundParam& one_of(std::vector<std::string> c) {
    static_assert(std::is_same_v<M, std::string> || std::is_same_v<M, std::vector<std::string>>,
                  "one_of() is for string members; others name their values with .values()");
    ParamSpec::one_of(std::move(c));
    return *this;
  }
  BoundParam& require() { ParamSpec::require(); return *this; }
  BoundParam& describe(std::string d) { ParamSpec::describe(std::move(d)); return *this; }
  BoundParam& existing_file() { ParamSpec::existing_file(); return *this; }
  BoundParam& existing_dir() { ParamSpec::existing_dir(); return *this; }
  BoundParam& existing_path() { ParamSpec::existing_path(); return *this; }

  // Shared with the setter, which maps a name to its value.
  std::shared_ptr<detail::NamedValues<M>> named = std::make_shared<detail::NamedValues<M>>();
};

// Param("count", &CounterSource::count_): a parameter stored in a member of
// the stage class S. Longer paths reach into member structs and pimpls:
//   Param("timeout_s", &ShardSource::stream_, &StreamOptions::timeout_s)
//   Param("lr", &TrainStage::opt_, &TrainOptions::lr)
//   Param("depth", &TrainStage::opt_, &TrainOptions::model, &ViTConfig::depth)
//   Param("batch_size", &EvalStage::impl_, &EvalStage::Impl::batch)   // a unique_ptr member
// bind_params() stores the value before configure().
template <class S, class M, class... Path>
BoundParam<detail::leaf_t<S, M S::*, Path...>> Param(std::string name, M S::*first, Path... rest) {
  static_assert(std::is_base_of_v<Stage, S>, "bind parameters to members of the stage class");
  using Leaf = detail::leaf_t<S, M S::*, Path...>;
  BoundParam<Leaf> p;
  p.name = std::move(name);
  if constexpr (!std::is_enum_v<Leaf>) p.type = param_type_of<Leaf>();
  p.setter = [first, rest..., named = p.named](Stage& st, const ParamValue& v) {
    Leaf& member = detail::walk(static_cast<S&>(st), first, rest...);
    if (!named->entries.empty()) member = named->lookup(std::get<std::string>(v));
    else if constexpr (!std::is_enum_v<Leaf>) member = from_param_value<Leaf>(v);
    else throw std::logic_error("an enum parameter without .values()");
  };
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

// Fills defaults and checks `given` against the schema. Throws
// std::invalid_argument listing every problem (unknown parameter, wrong type,
// out of range, missing required). The worker, the thread launcher and the
// in-process harness (catlip/local.h) all use it, so a stage sees identical
// parameters either way.
Params resolve_params(const StageSchema& schema, const std::map<std::string, ParamValue>& given);

// Stores every bound parameter of `schema` (ParamSpec::setter) that has a
// value in `params` into `stage`, which must be of the schema's stage class.
// The runtime calls it between creating the stage and configure(). Throws
// std::invalid_argument, naming the parameter, when a value does not fit its
// member.
void bind_params(const StageSchema& schema, const Params& params, Stage& stage);

}  // namespace catlip
