#include "model/quantize_model.h"

#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

namespace xtile {

namespace {

// llama.cpp's general.file_type values (enum llama_ftype).
uint32_t file_type_of(GgmlType t) { return t == GgmlType::Q8_0 ? 7 : 2; }

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// One row of ne0 elements of a float-typed tensor, as f32.
void row_to_f32(GgmlType type, const uint8_t* src, int64_t ne0, float* dst) {
  switch (type) {
    case GgmlType::F32:
      for (int64_t i = 0; i < ne0; ++i)
        dst[i] = reinterpret_cast<const float*>(src)[i];
      return;
    case GgmlType::F16: convert_row_f16_to_f32(reinterpret_cast<const uint16_t*>(src), dst, ne0); return;
    case GgmlType::BF16: convert_row_bf16_to_f32(reinterpret_cast<const uint16_t*>(src), dst, ne0); return;
    default: fail("cannot read rows of type ", ggml_type_name(type));
  }
}

}  // namespace

bool should_quantize(const std::string& name, uint32_t n_dims, uint64_t ne0) {
  if (n_dims < 2 || ne0 % kQK != 0) return false;
  if (!ends_with(name, ".weight")) return false;
  // The MoE router stays in float, as in llama.cpp: it is tiny and picks the experts.
  if (name.find("ffn_gate_inp") != std::string::npos) return false;
  return true;
}

QuantizeReport quantize_model(const std::string& in, const std::string& out, GgmlType target,
                              ThreadPool& pool,
                              const std::function<void(int, int, const std::string&)>& progress) {
  if (target != GgmlType::Q8_0 && target != GgmlType::Q4_0)
    fail("quantize: target type ", ggml_type_name(target), " is not supported (q8_0, q4_0)");
  const gguf::File file = gguf::File::open(in);
  gguf::Writer writer;
  for (const auto& [key, value] : file.metadata()) {
    if (key == "general.alignment") continue;  // the writer sets its own
    writer.set(key, value);
  }
  writer.set("general.file_type", gguf::Value::u32(file_type_of(target)));
  writer.set("general.quantization_version", gguf::Value::u32(2));

  QuantizeReport report;
  const int total = static_cast<int>(file.tensors().size());
  int done = 0;
  for (const gguf::TensorInfo& t : file.tensors()) {
    report.bytes_in += t.bytes;
    std::vector<uint64_t> ne(t.ne, t.ne + t.n_dims);
    if (!should_quantize(t.name, t.n_dims, t.ne[0])) {
      ++report.kept;
      report.bytes_out += t.bytes;
      writer.add_tensor(t.name, t.type, ne, t.data);
      continue;
    }
    if (t.type != GgmlType::F32 && t.type != GgmlType::F16 && t.type != GgmlType::BF16)
      fail("quantize: tensor '", t.name, "' is already ", ggml_type_name(t.type),
           "; quantize from an F32/F16/BF16 model");
    ++report.quantized;
    const int64_t ne0 = static_cast<int64_t>(t.ne[0]);
    const int64_t rows = static_cast<int64_t>(t.elements() / t.ne[0]);
    const size_t in_row = ggml_row_bytes(t.type, t.ne[0]);
    const size_t out_row = ggml_row_bytes(target, t.ne[0]);
    report.bytes_out += out_row * static_cast<uint64_t>(rows);
    const uint8_t* src = t.data;
    const GgmlType src_type = t.type;
    const std::string name = t.name;
    writer.add_tensor(t.name, target, ne, [=, &pool, &progress, &done](std::span<uint8_t> dst) {
      pool.parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1, int) {
        std::vector<float> row(static_cast<size_t>(ne0));
        for (int64_t r = r0; r < r1; ++r) {
          row_to_f32(src_type, src + r * in_row, ne0, row.data());
          uint8_t* o = dst.data() + r * out_row;
          if (target == GgmlType::Q8_0)
            quantize_row_q8_0(row.data(), reinterpret_cast<BlockQ8_0*>(o), ne0);
          else
            quantize_row_q4_0(row.data(), reinterpret_cast<BlockQ4_0*>(o), ne0);
        }
      });
      if (progress) progress(++done, total, name);
    });
  }
  writer.write(out);
  return report;
}

}  // namespace xtile
