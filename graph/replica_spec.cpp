// The implementation of catlip/replica_spec.h: a replica's plan and
// parameters as JSON, written by the launcher and read by catlip-worker.
#include "catlip/replica_spec.h"

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/security.h"

namespace catlip {

namespace {

using Json = nlohmann::json;

// A parameter as [type, value]: the type keeps 1.0 a float and [] typed.
Json param_to_json(const ParamValue& v) {
  Json value;
  std::visit([&](auto& x) { value = x; }, v);
  return Json::array({param_type_name(param_value_type(v)), value});
}

ParamValue param_from_json(const Json& j) {
  const std::string& type = json::string(j.at(0));
  const Json& v = j.at(1);
  if (type == param_type_name(ParamType::Bool)) return v.get<bool>();
  if (type == param_type_name(ParamType::Int)) return v.get<int64_t>();
  if (type == param_type_name(ParamType::Float)) return v.get<double>();
  if (type == param_type_name(ParamType::String)) return v.get<std::string>();
  if (type == param_type_name(ParamType::StringList)) return v.get<std::vector<std::string>>();
  if (type == param_type_name(ParamType::IntList)) return v.get<std::vector<int64_t>>();
  if (type == param_type_name(ParamType::FloatList)) return v.get<std::vector<double>>();
  throw std::runtime_error("unknown parameter type '" + type + "'");
}

Json consumers_to_json(const std::vector<ConsumerGroup>& groups) {
  Json out = Json::array();
  for (auto& c : groups)
    out.push_back({{"stage", c.stage}, {"replicas", c.replicas}, {"members", c.members}, {"prefetch", c.prefetch},
                   {"shm_prefetch", c.shm_prefetch}, {"keyed_replicas", c.keyed_replicas}});
  return out;
}

std::vector<ConsumerGroup> consumers_from_json(const Json& j) {
  std::vector<ConsumerGroup> out;
  for (auto& c : j) {
    ConsumerGroup g;
    g.stage = c.at("stage").get<std::string>();
    g.replicas = c.at("replicas").get<int>();
    g.members = c.at("members").get<std::vector<int>>();
    g.prefetch = c.at("prefetch").get<int>();
    g.shm_prefetch = c.value("shm_prefetch", 0);
    g.keyed_replicas = c.value("keyed_replicas", 0);
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

std::string replica_spec_to_text(const ReplicaSpec& s) {
  const ReplicaPlan& p = s.plan;
  Json params = Json::object();
  for (auto& [name, v] : s.params.values()) params[name] = param_to_json(v);
  Json j = {
      {"graph", p.graph_name}, {"stage", p.stage_name}, {"type", p.stage_type},
      {"replica", p.replica}, {"replicas", p.replicas}, {"node", p.node}, {"nodes", p.nodes},
      {"node_replica", p.node_replica}, {"node_replicas", p.node_replicas}, {"run_dir", p.run_dir},
      {"inputs", p.inputs}, {"input_stages", p.input_stages}, {"outputs", p.output_endpoints},
      {"group_endpoint", p.group_endpoint}, {"node_address", p.node_address},
      {"consumers", consumers_to_json(p.consumers)}, {"prefetch", p.prefetch},
      {"shm_prefetch", p.shm_prefetch}, {"max_message_bytes", p.max_message_bytes}, {"curve_secret", p.curve_secret},
      {"curve_clients", p.curve_clients},
      {"curve_public", p.curve.client.public_z85}, {"curve_client_secret", p.curve.client.secret_z85},
      {"curve_server_keys", p.curve.server_keys}, {"dedupe", p.dedupe},
      {"shm", p.shm}, {"shm_pool_bytes", p.shm_pool_bytes}, {"shm_threshold", p.shm_threshold},
      {"report_endpoint", p.report_endpoint}, {"report_interval_s", p.report_interval_s},
      {"params", params}};
  return j.dump(1);
}

Result<ReplicaSpec> replica_spec_from_text(const std::string& text, const std::string& what) {
  ReplicaSpec s;
  ReplicaPlan& p = s.plan;
  std::string member;
  try {
    Json j = json::parse(text, what, 8);
    auto get = [&](const char* key, auto& out) {
      member = key;
      out = j.at(key).get<std::remove_reference_t<decltype(out)>>();
    };
    get("graph", p.graph_name);
    get("stage", p.stage_name);
    get("type", p.stage_type);
    get("replica", p.replica);
    get("replicas", p.replicas);
    get("node", p.node);
    get("nodes", p.nodes);
    get("node_replica", p.node_replica);
    get("node_replicas", p.node_replicas);
    get("run_dir", p.run_dir);
    get("inputs", p.inputs);
    get("input_stages", p.input_stages);
    get("outputs", p.output_endpoints);
    get("group_endpoint", p.group_endpoint);
    get("node_address", p.node_address);
    member = "consumers";
    p.consumers = consumers_from_json(j.at("consumers"));
    get("prefetch", p.prefetch);
    get("shm_prefetch", p.shm_prefetch);
    get("max_message_bytes", p.max_message_bytes);
    get("curve_secret", p.curve_secret);
    get("curve_clients", p.curve_clients);
    get("curve_public", p.curve.client.public_z85);
    get("curve_client_secret", p.curve.client.secret_z85);
    get("curve_server_keys", p.curve.server_keys);
    get("dedupe", p.dedupe);
    get("shm", p.shm);
    get("shm_pool_bytes", p.shm_pool_bytes);
    get("shm_threshold", p.shm_threshold);
    get("report_endpoint", p.report_endpoint);
    get("report_interval_s", p.report_interval_s);
    for (auto& [name, v] : j.at("params").items()) {
      member = "params." + name;
      s.params.set(name, param_from_json(v));
    }
  } catch (const std::exception& e) {
    return Status::Invalid(what + (member.empty() ? "" : ": '" + member + "'") + ": " + e.what());
  }
  if (p.inputs.size() != p.input_stages.size())
    return Status::Invalid(what + ": 'inputs' and 'input_stages' differ in length");
  return s;
}

Result<std::string> write_replica_spec(const std::string& sock_dir, const ReplicaSpec& s) {
  std::string path = sock_dir + "/replica." + s.plan.stage_name + "." + std::to_string(s.plan.replica) + ".json";
  try {
    write_key_file(path, replica_spec_to_text(s));
  } catch (const std::exception& e) {
    return Status::Unavailable(std::string("cannot write the replica spec: ") + e.what());
  }
  return path;
}

Result<ReplicaSpec> read_replica_spec(const std::string& path) {
  std::string text;
  try {
    text = read_private_file(path);
  } catch (const std::exception& e) {
    return Status::NotFound(e.what());
  }
  return replica_spec_from_text(text, path);
}

}  // namespace catlip
