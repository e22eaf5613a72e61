// catlip/status.h - the one error type at catlip's boundaries: Status (as
// LevelDB's) and Result<T> (a value or the Status saying why not, as Arrow's).
//
// Functions that can fail for reasons outside the program (configuration,
// files, the environment, the network) return Status or Result<T> instead of
// throwing, a bool with a separate message, or "" meaning OK. Exceptions
// remain where a stage meets the runtime: the runtime turns them into a named
// replica failure. The message says what failed and names the input (file,
// line, variable, peer); the code says which kind of failure it was.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace catlip {

class [[nodiscard]] Status {
 public:
  enum class Code : uint8_t {
    Ok,
    Invalid,      // bad input: a value, a file's content, a flag
    NotFound,     // a file, host or name that is not there
    Unavailable,  // a peer or service that does not answer or refuses
    Internal,     // a bug: what should not happen did
  };

  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Invalid(std::string message) { return Status(Code::Invalid, std::move(message)); }
  static Status NotFound(std::string message) { return Status(Code::NotFound, std::move(message)); }
  static Status Unavailable(std::string message) { return Status(Code::Unavailable, std::move(message)); }
  static Status Internal(std::string message) { return Status(Code::Internal, std::move(message)); }

  bool ok() const { return code_ == Code::Ok; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }  // "" when OK
  // "invalid: ...", "not found: ...", or "OK".
  std::string to_string() const;
  // The same failure with what was being done in front: "reading x: <message>".
  Status context(const std::string& what) const {
    return ok() ? *this : Status(code_, what + ": " + message_);
  }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::Ok;
  std::string message_;
};

// A value, or the Status of why there is none. Reading the value of a failed
// Result throws std::logic_error (a bug in the caller, who checks ok() first).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: a value converts to its Result
  Result(Status status) : v_(std::move(status)) {  // NOLINT: so does a failure
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("a Result made from an OK Status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // OK when there is a value.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  const T& value() const& { return checked(); }
  T& value() & { return checked(); }
  T&& value() && { return std::move(checked()); }
  const T& operator*() const& { return checked(); }
  const T* operator->() const { return &checked(); }
  T value_or(T fallback) const { return ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  T& checked() {
    if (!ok()) throw std::logic_error("value() of a failed Result: " + std::get<Status>(v_).to_string());
    return std::get<T>(v_);
  }
  const T& checked() const { return const_cast<Result*>(this)->checked(); }
  std::variant<T, Status> v_;
};

inline std::string Status::to_string() const {
  switch (code_) {
    case Code::Ok: return "OK";
    case Code::Invalid: return "invalid: " + message_;
    case Code::NotFound: return "not found: " + message_;
    case Code::Unavailable: return "unavailable: " + message_;
    case Code::Internal: return "internal error: " + message_;
  }
  return message_;
}

}  // namespace catlip
