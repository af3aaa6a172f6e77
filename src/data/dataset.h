// Captioned image folders for training (Hugging Face imagefolder or .txt sidecars), the training
// image loader with its skip accounting, caption choice and the train/validation split.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "data/aspect_buckets.h"

#include "core/image.h"

namespace luminars {

// Image files a dataset folder may hold (case-insensitive).
bool is_dataset_image(const std::string& path);  // .png .jpg .jpeg .bmp

struct DatasetOptions {
  // Imagefolder layout: the column of metadata.jsonl holding the caption (a string, or a list of
  // strings for several captions per image).
  std::string caption_column = "text";
  // A sidecar folder without a single .txt caption is taken for the wrong folder, unless the
  // captions are not needed (a VAE learns from the pictures alone).
  bool captions_required = true;
};

struct DatasetItem {
  std::string path;                   // the image file
  std::vector<std::string> captions;  // empty: no caption; the image trains with the empty prompt
};

enum class DatasetLayout { ImageFolder, Sidecar };

// Indices 0..n−1 split into training and validation: round(val_fraction · n) held out, at least 1
// when the fraction is positive and n ≥ 2, at most n − 1; chosen by a seeded shuffle that is the
// same on every C++ standard library; both halves sorted. Throws for a fraction outside [0, 1).
struct IndexSplit {
  std::vector<int64_t> train, validation;
};
IndexSplit split_indices(int64_t n, double val_fraction, uint64_t seed);
// The same split over groups: items with equal keys (one picture cached at several sizes, or
// mirrored) fall on the same side, so held-out figures never see a training picture. Groups are
// numbered in order of first appearance and split by split_indices, so distinct keys give exactly
// split_indices(keys.size(), …).
IndexSplit split_groups(const std::vector<std::string>& keys, double val_fraction, uint64_t seed);

// A scanned folder. Layouts:
// - imagefolder: `metadata.jsonl` in the folder (and optionally in subfolders, each with file
//   names relative to its own folder): one JSON object per line with `file_name` and the caption
//   column. Rows naming the same file merge their captions. Rows whose file is missing are dropped
//   and counted; images not listed in any metadata.jsonl are ignored and counted.
// - sidecar: every image under the folder (recursive, hidden entries skipped) with `<stem>.txt`
//   beside it; each non-empty line of the .txt is one caption.
// In both, an image without a caption (no .txt, an empty .txt, a null or empty caption value) is
// kept with an empty caption list and counted in `uncaptioned`: it trains unconditionally, as the
// classifier-free-guidance dropout does. A folder with images but no metadata.jsonl and not a
// single .txt caption is an error (most likely the wrong folder), as is a folder without images.
struct Dataset {
  std::string root;
  DatasetLayout layout = DatasetLayout::Sidecar;
  std::vector<DatasetItem> items;  // sorted by path
  std::size_t uncaptioned = 0;     // items with no caption
  std::size_t missing = 0;         // imagefolder: rows whose file does not exist
  std::size_t unlisted = 0;        // imagefolder: images present but in no metadata.jsonl
  std::size_t not_utf8 = 0;        // skipped: a file name or caption that is not UTF-8 (e.g. Latin-1)

  static Dataset scan(const std::string& dir, const DatasetOptions& options = {});

  std::size_t size() const { return items.size(); }
  bool empty() const { return items.empty(); }

  // A deterministic held-out split: round(val_fraction · size) items (at least 1 when the fraction
  // is positive and there are at least 2 items, at most size − 1) chosen by a seeded shuffle.
  // Both halves keep the path order. Throws for a fraction outside [0, 1).
  struct Split;
  Split split(double val_fraction, uint64_t seed) const;

  // One line: folder, layout, counts of images, captions, uncaptioned, missing and unlisted.
  std::string summary() const;
};

struct Dataset::Split {
  Dataset train, validation;
};

// One caption of the item, drawn uniformly with `rng` ("" when the item has none). Always draws
// exactly one number, so the stream stays aligned whatever the caption counts are.
std::string choose_caption(const DatasetItem& item, std::mt19937_64& rng);

enum class SkipReason { Missing, Unreadable, TooSmall, TooLarge };
constexpr int kSkipReasons = 4;
const char* skip_reason_name(SkipReason reason);  // "missing", "unreadable", "too small", "too large"

// Counts of images the loader skipped, by reason, with the first few paths of each. Not
// thread-safe: keep one per worker and merge().
class SkipSummary {
 public:
  void add_loaded() { ++loaded_; }
  void add(SkipReason reason, const std::string& path, const std::string& detail);
  void merge(const SkipSummary& other);

  std::size_t count(SkipReason reason) const { return counts_[static_cast<int>(reason)]; }
  std::size_t skipped() const;
  std::size_t loaded() const { return loaded_; }
  std::string last_detail() const { return last_detail_; }  // "<path>: <why>" of the latest skip

  // One paragraph, e.g. "Skipped 3 of 120 images: 2 unreadable (a.png: …; b.jpg: …), 1 too small
  // (c.png: 40x30, shorter side under 64). Skipped images are left out of training."; empty
  // string when nothing was skipped.
  std::string summary() const;
  void print(std::ostream& out) const;  // summary() and a newline, when anything was skipped

 private:
  static constexpr std::size_t kExamples = 3;
  std::array<std::size_t, kSkipReasons> counts_{};
  std::array<std::vector<std::string>, kSkipReasons> examples_;
  std::size_t loaded_ = 0;
  std::string last_detail_;
};

struct TrainingImageOptions {
  double min_side_fraction = 0.25;      // skip when the shorter side < fraction · resolution
  int64_t max_pixels = int64_t{1} << 28;  // skip larger images (268 MP) instead of decoding them
  int64_t width = 0, height = 0;          // a non-square size to cover and crop to (an aspect bucket); 0: resolution²
};

// Each item's aspect-ratio bucket (data/aspect_buckets.h), from its image's header alone; an
// unreadable file gets the square bucket's (it is skipped when loaded, with its reason).
std::vector<std::size_t> assign_buckets(const Dataset& data, const std::vector<BucketSize>& buckets);

// Loads `path` for training: alpha composited on white, scaled to cover resolution² (or
// options.width × height, an aspect bucket), a centre crop (or a random one) to it, and a horizontal flip with probability ½ when
// `flip`. Unreadable, truncated, too small or too large files return nullopt and are counted in
// `skips` (when given) with the reason; never throws for a bad file. Always draws three numbers
// from `rng` (crop x, crop y, flip), so the stream does not depend on the options or on skips.
std::optional<Image> load_training_image(const std::string& path, int resolution, bool random_crop, bool flip,
                                         std::mt19937_64& rng, SkipSummary* skips = nullptr,
                                         const TrainingImageOptions& options = {});

}  // namespace luminars
