#include "train/run_contract.h"

#include <functional>

#include "core/error.h"
#include "train/distributed.h"

namespace luminars {

const std::set<std::string>& fields_that_may_change_on_resume() {
  static const std::set<std::string> fields{"steps",      "checkpoint-every", "keep-checkpoints", "sample-every",
                                            "validate-every", "stop-after",   "skip-nonfinite",   "threads"};
  return fields;
}

const std::set<std::string>& fields_that_may_differ_between_ranks() {
  static const std::set<std::string> fields{"threads"};
  return fields;
}

nlohmann::json flat_contract(const nlohmann::json& fields) {
  nlohmann::json out = nlohmann::json::object();
  std::function<void(const std::string&, const nlohmann::json&)> add = [&](const std::string& name, const nlohmann::json& v) {
    if (!v.is_object()) {
      out[name] = v;
      return;
    }
    for (const auto& [key, value] : v.items()) add(name.empty() ? key : name + "." + key, value);
  };
  add("", fields);
  return out;
}

namespace {

std::string contract_value_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Fields named like the command-line flags show as flags; the dotted fields of a config as they are.
std::string contract_field_text(const std::string& field) { return field.find('.') == std::string::npos ? "--" + field : field; }

std::string joined_fields(const std::set<std::string>& fields) {
  std::string out;
  for (const auto& f : fields) out += (out.empty() ? "" : ", ") + f;
  return out;
}

}  // namespace

std::optional<ContractDifference> contract_difference(const nlohmann::json& was, const nlohmann::json& now,
                                                      const std::set<std::string>& may_differ) {
  std::set<std::string> fields;
  for (const auto* side : {&was, &now})
    for (const auto& [key, value] : side->items()) fields.insert(key);
  for (const auto& f : fields) {
    if (may_differ.count(f)) continue;
    const bool in_was = was.contains(f), in_now = now.contains(f);
    if (in_was && in_now && was[f] == now[f]) continue;
    return ContractDifference{contract_field_text(f), in_was ? contract_value_text(was[f]) : "(not recorded)",
                              in_now ? contract_value_text(now[f]) : "(not recorded)"};
  }
  return std::nullopt;
}

void check_resume_contract(const nlohmann::json& saved, const nlohmann::json& now, const std::string& checkpoint_dir) {
  const auto& allowed = fields_that_may_change_on_resume();
  if (auto d = contract_difference(saved, now, allowed))
    throw Error("cannot resume " + checkpoint_dir + ": " + d->field + " was " + d->was + ", now " + d->now +
                " (fields that may change on resume: " + joined_fields(allowed) + "; start a new run with --overwrite otherwise)");
}

void check_ranks_agree(ProcessGroup& group, const nlohmann::json& contract) {
  const std::string what = "comparing the ranks' options";
  const auto all = group.gather_text(contract.dump(), what);
  std::string verdict;
  for (std::size_t r = 1; r < all.size() && verdict.empty(); ++r) {
    nlohmann::json theirs;
    try {
      theirs = nlohmann::json::parse(all[r]);
    } catch (const nlohmann::json::exception&) {
      verdict = "rank " + std::to_string(r) + " sent options that are not JSON";
      continue;
    }
    if (auto d = contract_difference(contract, theirs, fields_that_may_differ_between_ranks()))
      verdict = "rank " + std::to_string(r) + " has " + d->field + " " + d->now + " where rank 0 has " + d->was;
  }
  verdict = group.broadcast_text(verdict, what);
  if (!verdict.empty())
    throw Error("rank " + std::to_string(group.rank()) + " of " + std::to_string(group.size()) + ": the ranks disagree: " +
                verdict + " (start every rank with the same options and the same cache or data)");
}

}  // namespace luminars
