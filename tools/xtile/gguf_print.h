// Human-readable views of a GGUF file for `xtile info`: header summary, metadata (every key
// with its type, long values shortened), and the tensor table with totals. The tensor table
// takes extra columns so that the runtime can add, per tensor, its packed layout and tier.
#pragma once

#include <functional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace xtile::cli {

// A simple aligned text table: headers, then one row per entry.
struct TableColumn {
  std::string header;
  bool align_right = false;
};
void print_table(std::ostream& os, const std::vector<TableColumn>& columns,
                 const std::vector<std::vector<std::string>>& rows, std::string_view indent = "  ");

// A value shortened for display: strings quoted, escaped and cut at about `max_chars`
// characters; arrays as `[string × 151936] "!", "\"", …`.
std::string display_value(const gguf::Value& v, size_t max_chars = 60);

void print_gguf_header(std::ostream& os, const gguf::File& file);
void print_metadata(std::ostream& os, const gguf::File& file);

// An extra column of the tensor table, computed per tensor.
struct TensorColumn {
  std::string header;
  std::function<std::string(const gguf::TensorInfo&)> cell;
  bool align_right = false;
};
// Columns #, name, type, shape (ggml ne order), bytes, then `extra`; then the totals: tensor
// count per type, parameters, bytes and bits per weight.
void print_tensor_table(std::ostream& os, const gguf::File& file,
                        std::span<const TensorColumn> extra = {});

}  // namespace xtile::cli
