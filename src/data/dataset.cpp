#include "data/dataset.h"

#include <stb_image.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/json_fields.h"
#include "core/files.h"
#include "core/utf8.h"

namespace luminars {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kMetadataName = "metadata.jsonl";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const auto is_space = [](unsigned char c) { return std::isspace(c) != 0; };
  auto b = std::find_if_not(s.begin(), s.end(), is_space);
  auto e = std::find_if_not(s.rbegin(), s.rend(), is_space).base();
  return b < e ? std::string(b, e) : std::string();
}

void strip_bom(std::string& s) {
  if (s.size() >= 3 && s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);
}

// Non-empty trimmed lines.
std::vector<std::string> caption_lines(const std::string& path) {
  std::string text = read_file(path);
  strip_bom(text);
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (auto t = trim(line); !t.empty()) out.push_back(std::move(t));
  return out;
}

// Regular files under `dir`, hidden files and folders left out, sorted.
std::vector<fs::path> walk(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) throw Error("cannot list dataset folder " + dir.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw Error("cannot list dataset folder " + dir.string() + ": " + ec.message());
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string json_type(const json& v) { return v.type_name(); }

// Captions of one metadata value: a string, a list of strings, or null.
std::vector<std::string> captions_of(const json& v, const std::string& where, const std::string& column) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (v.is_string()) {
    if (auto t = trim(v.get<std::string>()); !t.empty()) out.push_back(std::move(t));
    return out;
  }
  if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_string())
        throw Error(where + ": column \"" + column + "\" holds a list with a " + json_type(e) +
                    "; expected strings");
      if (auto t = trim(e.get<std::string>()); !t.empty()) out.push_back(std::move(t));
    }
    return out;
  }
  throw Error(where + ": column \"" + column + "\" must be a string or a list of strings, got " + json_type(v));
}

void finish_counts(Dataset& d) {
  d.uncaptioned = static_cast<std::size_t>(
      std::count_if(d.items.begin(), d.items.end(), [](const DatasetItem& i) { return i.captions.empty(); }));
}

Dataset scan_imagefolder(const fs::path& root, const std::vector<fs::path>& metadata_files,
                         const std::vector<fs::path>& images, const DatasetOptions& options) {
  Dataset d;
  d.root = root.string();
  d.layout = DatasetLayout::ImageFolder;
  std::map<std::string, std::vector<std::string>> by_path;
  for (const auto& meta : metadata_files) {
    std::string text = read_file(meta.string());
    strip_bom(text);
    std::istringstream in(text);
    std::set<std::string> columns;
    std::size_t rows = 0, rows_with_column = 0, line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (trim(line).empty()) continue;
      const std::string where = meta.string() + " line " + std::to_string(line_no);
      const json row = json_fields::parse(line, where);
      if (!row.is_object()) throw Error(where + ": expected a JSON object, got " + json_type(row));
      ++rows;
      for (const auto& [k, v] : row.items()) columns.insert(k);
      auto fn = row.find("file_name");
      if (fn == row.end()) throw Error(where + ": missing \"file_name\"");
      if (!fn->is_string() || fn->get<std::string>().empty())
        throw Error(where + ": \"file_name\" must be a non-empty string");
      std::vector<std::string> caps;
      if (auto c = row.find(options.caption_column); c != row.end()) {
        ++rows_with_column;
        caps = captions_of(*c, where, options.caption_column);
      }
      const fs::path image = (meta.parent_path() / fn->get<std::string>()).lexically_normal();
      std::error_code ec;
      if (!fs::is_regular_file(image, ec)) {
        ++d.missing;
        continue;
      }
      auto& entry = by_path[image.string()];
      entry.insert(entry.end(), caps.begin(), caps.end());
    }
    if (rows == 0) throw Error("dataset metadata " + meta.string() + " has no rows");
    if (rows_with_column == 0) {
      std::string found;
      for (const auto& c : columns) found += (found.empty() ? "" : ", ") + c;
      throw Error("dataset metadata " + meta.string() + ": no row has the caption column \"" +
                  options.caption_column + "\" (columns: " + found + ")");
    }
  }
  if (by_path.empty())
    throw Error("dataset " + root.string() + ": none of the " + std::to_string(d.missing) +
                " files listed in " + kMetadataName + " exists");
  for (auto& [path, caps] : by_path) d.items.push_back({path, std::move(caps)});
  for (const auto& img : images)
    if (!by_path.count(img.lexically_normal().string())) ++d.unlisted;
  finish_counts(d);
  return d;
}

Dataset scan_sidecar(const fs::path& root, const std::vector<fs::path>& images, const std::set<fs::path>& texts,
                     bool captions_required) {
  Dataset d;
  d.root = root.string();
  d.layout = DatasetLayout::Sidecar;
  std::size_t with_txt = 0;
  for (const auto& img : images) {
    DatasetItem item{img.lexically_normal().string(), {}};
    for (const char* ext : {".txt", ".TXT"}) {
      fs::path txt = img;
      txt.replace_extension(ext);
      if (texts.count(txt)) {
        ++with_txt;
        item.captions = caption_lines(txt.string());
        break;
      }
    }
    // Names and captions end up in JSON (the cache's index, logs): an item that is not UTF-8 is
    // skipped and counted here rather than failing the whole run when that JSON is written.
    if (!is_valid_utf8(item.path) ||
        !std::all_of(item.captions.begin(), item.captions.end(), [](const std::string& c) { return is_valid_utf8(c); })) {
      ++d.not_utf8;
      continue;
    }
    d.items.push_back(std::move(item));
  }
  if (with_txt == 0 && captions_required)
    throw Error("dataset folder " + root.string() + " has " + std::to_string(images.size()) +
                " images but no captions: expected " + kMetadataName +
                " (Hugging Face imagefolder) or a .txt caption beside each image");
  std::sort(d.items.begin(), d.items.end(), [](const DatasetItem& a, const DatasetItem& b) { return a.path < b.path; });
  finish_counts(d);
  return d;
}

double unit_uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

bool is_dataset_image(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

Dataset Dataset::scan(const std::string& dir, const DatasetOptions& options) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error("dataset folder not found: " + dir);
  if (!fs::is_directory(dir, ec)) throw Error("dataset path is not a folder: " + dir);
  if (options.caption_column.empty()) throw Error("dataset " + dir + ": empty caption column name");
  const fs::path root(dir);
  std::vector<fs::path> images, metadata;
  std::set<fs::path> texts;
  for (auto& f : walk(root)) {
    const std::string name = f.filename().string();
    if (name == kMetadataName) metadata.push_back(f);
    else if (is_dataset_image(name)) images.push_back(f);
    else if (lower(f.extension().string()) == ".txt") texts.insert(f);
  }
  if (!metadata.empty()) return scan_imagefolder(root, metadata, images, options);
  if (images.empty())
    throw Error("no images (.png, .jpg, .jpeg, .bmp) and no " + std::string(kMetadataName) + " in dataset folder " + dir);
  return scan_sidecar(root, images, texts, options.captions_required);
}

IndexSplit split_indices(int64_t n, double val_fraction, uint64_t seed) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    throw Error("validation fraction must be in [0, 1), got " + std::to_string(val_fraction));
  int64_t n_val = std::llround(val_fraction * static_cast<double>(n));
  if (val_fraction > 0.0 && n >= 2) n_val = std::clamp<int64_t>(n_val, 1, n - 1);
  if (n < 2) n_val = 0;
  // Fisher–Yates with our own index draw: the same split on every standard library.
  std::vector<int64_t> order(static_cast<std::size_t>(std::max<int64_t>(n, 0)));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::mt19937_64 rng(seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  IndexSplit s;
  s.validation.assign(order.begin(), order.begin() + n_val);
  s.train.assign(order.begin() + n_val, order.end());
  std::sort(s.validation.begin(), s.validation.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

IndexSplit split_groups(const std::vector<std::string>& keys, double val_fraction, uint64_t seed) {
  std::unordered_map<std::string, int64_t> group_of;
  std::vector<int64_t> group(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i)
    group[i] = group_of.try_emplace(keys[i], static_cast<int64_t>(group_of.size())).first->second;
  const IndexSplit by_group = split_indices(static_cast<int64_t>(group_of.size()), val_fraction, seed);
  std::vector<char> held_out(group_of.size(), 0);
  for (int64_t g : by_group.validation) held_out[static_cast<std::size_t>(g)] = 1;
  IndexSplit s;
  for (std::size_t i = 0; i < keys.size(); ++i)
    (held_out[static_cast<std::size_t>(group[i])] ? s.validation : s.train).push_back(static_cast<int64_t>(i));
  return s;
}

Dataset::Split Dataset::split(double val_fraction, uint64_t seed) const {
  const IndexSplit idx = split_indices(static_cast<int64_t>(items.size()), val_fraction, seed);
  Split s;
  for (Dataset* d : {&s.train, &s.validation}) {
    d->root = root;
    d->layout = layout;
  }
  for (auto i : idx.train) s.train.items.push_back(items[static_cast<std::size_t>(i)]);
  for (auto i : idx.validation) s.validation.items.push_back(items[static_cast<std::size_t>(i)]);
  finish_counts(s.train);
  finish_counts(s.validation);
  return s;
}

std::string Dataset::summary() const {
  std::size_t captions = 0;
  for (const auto& i : items) captions += i.captions.size();
  std::string s = "dataset " + root + ": " + std::to_string(items.size()) + " images (";
  s += layout == DatasetLayout::ImageFolder ? std::string(kMetadataName) : std::string(".txt captions");
  s += "), " + std::to_string(captions) + " captions";
  if (uncaptioned) s += ", " + std::to_string(uncaptioned) + " without caption (trained unconditionally)";
  if (missing) s += ", " + std::to_string(missing) + " listed files missing";
  if (unlisted) s += ", " + std::to_string(unlisted) + " images not in " + kMetadataName + " ignored";
  if (not_utf8) s += ", " + std::to_string(not_utf8) + " skipped (file name or caption not UTF-8)";
  return s;
}

std::string choose_caption(const DatasetItem& item, std::mt19937_64& rng) {
  const uint64_t r = rng();
  if (item.captions.empty()) return "";
  return item.captions[r % item.captions.size()];
}

const char* skip_reason_name(SkipReason reason) {
  switch (reason) {
    case SkipReason::Missing: return "missing";
    case SkipReason::Unreadable: return "unreadable";
    case SkipReason::TooSmall: return "too small";
    case SkipReason::TooLarge: return "too large";
  }
  return "?";
}

void SkipSummary::add(SkipReason reason, const std::string& path, const std::string& detail) {
  const auto r = static_cast<int>(reason);
  ++counts_[r];
  last_detail_ = path + ": " + detail;
  if (examples_[r].size() < kExamples) examples_[r].push_back(last_detail_);
}

void SkipSummary::merge(const SkipSummary& other) {
  loaded_ += other.loaded_;
  for (int r = 0; r < kSkipReasons; ++r) {
    counts_[r] += other.counts_[r];
    for (const auto& e : other.examples_[r])
      if (examples_[r].size() < kExamples) examples_[r].push_back(e);
  }
  if (!other.last_detail_.empty()) last_detail_ = other.last_detail_;
}

std::size_t SkipSummary::skipped() const {
  std::size_t n = 0;
  for (auto c : counts_) n += c;
  return n;
}

std::string SkipSummary::summary() const {
  const std::size_t n = skipped();
  if (n == 0) return "";
  std::string s = "Skipped " + std::to_string(n) + " of " + std::to_string(n + loaded_) + " images:";
  bool first = true;
  for (int r = 0; r < kSkipReasons; ++r) {
    if (counts_[r] == 0) continue;
    s += first ? " " : ", ";
    first = false;
    s += std::to_string(counts_[r]) + " " + skip_reason_name(static_cast<SkipReason>(r)) + " (";
    for (std::size_t i = 0; i < examples_[r].size(); ++i) s += (i ? "; " : "") + examples_[r][i];
    if (counts_[r] > examples_[r].size()) s += "; …";
    s += ")";
  }
  s += ". Skipped images are left out of training.";
  return s;
}

void SkipSummary::print(std::ostream& out) const {
  if (skipped()) out << summary() << '\n';
}

std::vector<std::size_t> assign_buckets(const Dataset& data, const std::vector<BucketSize>& buckets) {
  const std::size_t square = nearest_bucket(buckets, 1, 1);
  std::vector<std::size_t> out;
  out.reserve(data.items.size());
  for (const auto& item : data.items) {
    int w = 0, h = 0, channels = 0;
    out.push_back(stbi_info(item.path.c_str(), &w, &h, &channels) && w > 0 && h > 0 ? nearest_bucket(buckets, w, h) : square);
  }
  return out;
}

std::optional<Image> load_training_image(const std::string& path, int resolution, bool random_crop, bool flip,
                                         std::mt19937_64& rng, SkipSummary* skips,
                                         const TrainingImageOptions& options) {
  if (resolution <= 0) throw Error("training resolution must be positive, got " + std::to_string(resolution));
  const double fx = unit_uniform(rng), fy = unit_uniform(rng);
  const bool mirror = unit_uniform(rng) < 0.5;
  auto skip = [&](SkipReason reason, const std::string& detail) -> std::optional<Image> {
    if (skips) skips->add(reason, path, detail);
    return std::nullopt;
  };
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return skip(SkipReason::Missing, "not found");
  int w = 0, h = 0, channels = 0;
  if (!stbi_info(path.c_str(), &w, &h, &channels)) {
    const char* why = stbi_failure_reason();
    return skip(SkipReason::Unreadable, std::string("not a readable image (") + (why ? why : "unknown format") + ")");
  }
  if (static_cast<int64_t>(w) * h > options.max_pixels)
    return skip(SkipReason::TooLarge,
                std::to_string(w) + "x" + std::to_string(h) + ", over " + std::to_string(options.max_pixels) + " pixels");
  const double min_side = options.min_side_fraction * resolution;
  if (std::min(w, h) < min_side) {
    std::ostringstream d;
    d << w << "x" << h << ", shorter side under " << min_side;
    return skip(SkipReason::TooSmall, d.str());
  }
  Image img;
  try {
    img = load_image(path);
  } catch (const std::exception& e) {
    std::string why = e.what();  // "cannot decode image <path>: <reason>": keep the reason
    if (auto p = why.find(path + ": "); p != std::string::npos) why = why.substr(p + path.size() + 2);
    return skip(SkipReason::Unreadable, why);
  }
  const int width = static_cast<int>(options.width > 0 ? options.width : resolution);
  const int height = static_cast<int>(options.height > 0 ? options.height : resolution);
  Image out = random_crop ? resize_to_cover(img, width, height, static_cast<float>(fx), static_cast<float>(fy))
                          : resize_to_cover(img, width, height);
  if (flip && mirror) out = flip_horizontal(out);
  if (skips) skips->add_loaded();
  return out;
}

}  // namespace luminars
