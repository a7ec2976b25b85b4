#include "gguf_print.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>

#include "common.h"

namespace xtile::cli {

namespace {
namespace gguf_print {  // unity batches: CMakeLists.txt

// Display width of a UTF-8 string: one column per code point (continuation bytes are free).
size_t display_width(std::string_view s) {
  size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  return n;
}

std::string format_float(double v, bool single) {
  char buf[64];
  std::to_chars_result r = single ? std::to_chars(buf, buf + sizeof(buf), static_cast<float>(v))
                                  : std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

// Quotes and escapes `s`, stopping after about `max_chars` code points (never inside one).
std::string quote(std::string_view s, size_t max_chars) {
  std::string out = "\"";
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const bool starts_char = (c & 0xc0) != 0x80;
    if (starts_char && chars == max_chars) return out + "\"…";
    if (starts_char) ++chars;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string scalar_text(const gguf::Value& v, size_t max_chars) {
  switch (v.type) {
    case gguf::ValueType::STRING: return quote(std::get<std::string>(v.data), max_chars);
    case gguf::ValueType::BOOL: return std::get<bool>(v.data) ? "true" : "false";
    case gguf::ValueType::F32: return format_float(std::get<double>(v.data), true);
    case gguf::ValueType::F64: return format_float(std::get<double>(v.data), false);
    case gguf::ValueType::I8:
    case gguf::ValueType::I16:
    case gguf::ValueType::I32:
    case gguf::ValueType::I64: return std::to_string(std::get<int64_t>(v.data));
    case gguf::ValueType::ARRAY: return display_value(v, max_chars);
    default: return std::to_string(std::get<uint64_t>(v.data));
  }
}

}  // namespace gguf_print
}  // namespace

std::string display_value(const gguf::Value& v, size_t max_chars) {
  using namespace gguf_print;  // this file's helpers
  if (v.type != gguf::ValueType::ARRAY) return scalar_text(v, max_chars);
  const gguf::Array& a = std::get<gguf::Array>(v.data);
  std::string out = "[" + std::string(gguf::value_type_name(a.elem_type)) + " × " +
                    std::to_string(a.items.size()) + "]";
  size_t width = 0;
  for (size_t i = 0; i < a.items.size(); ++i) {
    // Elements are shown while the list stays within max_chars; each string element is cut
    // shorter so that one long entry (a chat template) does not hide the others.
    const std::string item = a.items[i].type == gguf::ValueType::ARRAY
                                 ? "[…]"
                                 : scalar_text(a.items[i], std::min<size_t>(max_chars, 24));
    if (width + display_width(item) > max_chars && i > 0) return out + ", …";
    out += (i == 0 ? " " : ", ") + item;
    width += display_width(item) + 2;
  }
  return out;
}

void print_table(std::ostream& os, const std::vector<TableColumn>& columns,
                 const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
  using namespace gguf_print;  // this file's helpers
  std::vector<size_t> w(columns.size());
  for (size_t c = 0; c < columns.size(); ++c) w[c] = display_width(columns[c].header);
  for (const auto& row : rows)
    for (size_t c = 0; c < columns.size() && c < row.size(); ++c)
      w[c] = std::max(w[c], display_width(row[c]));
  auto emit = [&](const std::vector<std::string>& cells) {
    std::string line(indent);
    for (size_t c = 0; c < columns.size(); ++c) {
      const std::string& s = c < cells.size() ? cells[c] : std::string();
      const std::string pad(w[c] - display_width(s), ' ');
      const bool last = c + 1 == columns.size();
      line += columns[c].align_right ? pad + s : (last ? s : s + pad);
      if (!last) line += "  ";
    }
    os << line << "\n";
  };
  std::vector<std::string> headers;
  for (const auto& c : columns) headers.push_back(c.header);
  emit(headers);
  for (const auto& row : rows) emit(row);
}

void print_gguf_header(std::ostream& os, const gguf::File& file) {
  os << "GGUF file " << file.path() << "\n";
  os << "  version       " << file.version() << "\n";
  os << "  alignment     " << file.alignment()
     << (file.has("general.alignment") ? "" : " (default)") << "\n";
  os << "  file size     " << format_bytes(file.file_size()) << " (" << file.file_size()
     << " bytes)\n";
  os << "  data offset   " << file.data_offset() << "\n";
  os << "  metadata      " << file.metadata().size() << " keys\n";
  os << "  tensors       " << file.tensors().size() << "\n";
}

void print_metadata(std::ostream& os, const gguf::File& file) {
  os << "\nmetadata (" << file.metadata().size() << " keys)\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, value] : file.metadata())
    rows.push_back({key, std::string(gguf::value_type_name(value.type)), display_value(value)});
  print_table(os, {{"key"}, {"type"}, {"value"}}, rows);
}

void print_tensor_table(std::ostream& os, const gguf::File& file,
                        std::span<const TensorColumn> extra) {
  const auto& tensors = file.tensors();
  os << "\ntensors (" << tensors.size() << ")\n";
  std::vector<TableColumn> columns = {
      {"#", true}, {"name"}, {"type"}, {"shape"}, {"bytes", true}};
  for (const TensorColumn& c : extra) columns.push_back({c.header, c.align_right});
  std::vector<std::vector<std::string>> rows;
  uint64_t params = 0, bytes = 0;
  std::map<std::string, int> per_type;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const gguf::TensorInfo& t = tensors[i];
    std::vector<std::string> row = {std::to_string(i), t.name,
                                    std::string(ggml_type_name(t.type)), t.shape_string(),
                                    std::to_string(t.bytes)};
    for (const TensorColumn& c : extra) row.push_back(c.cell(t));
    rows.push_back(std::move(row));
    params += t.elements();
    bytes += t.bytes;
    ++per_type[std::string(ggml_type_name(t.type))];
  }
  if (tensors.empty()) {
    os << "\ntotals: 0 tensors\n";
    return;
  }
  print_table(os, columns, rows);
  os << "\ntotals: " << tensors.size() << " tensors (";
  bool first = true;
  for (const auto& [type, n] : per_type) {
    os << (first ? "" : ", ") << type << " " << n;
    first = false;
  }
  os << ")";
  os << ", " << format_count(params) << " parameters (" << params << "), " << format_bytes(bytes)
     << " (" << bytes << " bytes)";
  if (params > 0) {  // a model of zero-element tensors is valid GGUF
    char bpw[32];
    std::snprintf(bpw, sizeof(bpw), "%.2f", 8.0 * static_cast<double>(bytes) /
                                                static_cast<double>(params));
    os << ", " << bpw << " bits per weight";
  }
  os << "\n";
}

}  // namespace xtile::cli
