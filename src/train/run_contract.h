// The training contract: every option and model setting that a run's results depend on, as one
// flat JSON object (field -> value; nested objects such as a model config become dotted fields,
// "config.recursions"). It is written into every checkpoint's state.json, compared field by field
// on --resume, and compared between the ranks of a data-parallel run before they start.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

namespace luminars {

class ProcessGroup;

// What may differ between a checkpoint's contract and a resumed run's.
const std::set<std::string>& fields_that_may_change_on_resume();
// What may differ between the ranks of one run.
const std::set<std::string>& fields_that_may_differ_between_ranks();

// `fields` with nested objects flattened into dotted names: {"config": {"a": 1}} -> {"config.a": 1}.
nlohmann::json flat_contract(const nlohmann::json& fields);

struct ContractDifference {
  std::string field;     // as the user knows it: "--lr-schedule", "config.recursions"
  std::string was, now;  // values as text; "(not recorded)" for a field one side lacks
};
// The first field, by name, whose value differs between `was` and `now`, `may_differ` apart.
std::optional<ContractDifference> contract_difference(const nlohmann::json& was, const nlohmann::json& now,
                                                      const std::set<std::string>& may_differ);

// Throws "cannot resume DIR: --lr-schedule was cosine, now constant (fields that may change on
// resume: ...)" when `now` differs from the checkpoint's contract `saved` outside the allowed fields.
void check_resume_contract(const nlohmann::json& saved, const nlohmann::json& now, const std::string& checkpoint_dir);

// Every rank sends its contract to rank 0, which compares each with its own; on any difference
// every rank throws the same error, naming the first rank that differs, the field and both values.
void check_ranks_agree(ProcessGroup& group, const nlohmann::json& contract);

}  // namespace luminars
