// catlip/json.h - JSON for catlip's own files, on nlohmann-json.
//
// Every JSON that catlip reads or writes (metrics.jsonl, summary.json,
// eval/transfer/compare outputs, export config.json, safetensors headers,
// data positions, synthetic ground truth, bench results) goes through
// nlohmann-json: its parser, its string escaping, its number printing. This
// header adds what those files need on top: parse errors that name the
// input, a nesting cap for input from outside, typed access with clear
// errors, and the one-line-per-member layout of the human-readable files.
//
// Only <nlohmann/json_fwd.hpp> here: include <nlohmann/json.hpp> in the .cpp
// files that build or walk values. Not part of the plugin SDK (catlip_json is
// a static library of the binaries and plugins, never installed).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace catlip::json {

using Value = nlohmann::json;            // parsed input: object keys sorted
using Ordered = nlohmann::ordered_json;  // output: keys in insertion order

// Parses `text`. A syntax error throws std::runtime_error
//   "<what>: invalid JSON at byte B (line L, column C): <nlohmann's reason>"
// (B counts from 1; no "<what>: " when what is empty). With max_depth > 0, arrays/objects nested deeper than
// that are an error too (input from outside, e.g. a safetensors header).
Value parse(const std::string& text, const std::string& what, int max_depth = 0);
// Reads and parses a file; errors ("cannot read", parse errors) name it.
Value read_file(const std::string& path, int max_depth = 0);

// The text of `v`. expand < 0: compact, as nlohmann's dump() ({"a":1,"b":[2]}).
// expand >= 0: arrays/objects at nesting depth < expand (the top level is
// depth 0) put one member per line, indented two spaces per level; deeper
// ones stay on one line with ", " and ": " ({"a": 1, "b": [2]}). So
// expand = 0 writes one line, expand = 1 a top-level object with one key per
// line. Strings that are not valid UTF-8 get U+FFFD for the bad bytes
// rather than an exception. No trailing newline.
std::string dump(const Ordered& v, int expand = -1);
std::string dump(const Value& v, int expand = -1);

// Typed access to parsed input: each throws std::runtime_error naming what
// was expected ("expected an integer, got string") instead of converting.
const Value& object(const Value& v);
const Value& array(const Value& v);
const std::string& string(const Value& v);
int64_t integer(const Value& v);  // an integer in int64_t's range
double number(const Value& v);    // an integer or a float
// The member `key` of an object, or nullptr (also when v is no object).
const Value* find(const Value& v, const std::string& key);
// The member `key`; throws "missing 'key'" when there is none.
const Value& at(const Value& v, const std::string& key);

// Numbers for files that print a fixed precision: v rounded as printf's
// "%.<digits>g" / "%.<decimals>f" would write it, so that the shortest text
// nlohmann prints is at most that long. Non-finite values pass through
// (nlohmann writes them as null).
double round_sig(double v, int digits);
double round_fixed(double v, int decimals);

}  // namespace catlip::json
