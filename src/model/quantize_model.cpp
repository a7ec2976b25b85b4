#include "model/quantize_model.h"

#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "quant/quantize_types.h"

namespace xtile {

namespace {

bool is_float(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

// One row of ne0 elements of a float-typed tensor, as f32.
void row_to_f32(GgmlType type, const uint8_t* src, int64_t ne0, float* dst) {
  switch (type) {
    case GgmlType::F32:
      for (int64_t i = 0; i < ne0; ++i) dst[i] = reinterpret_cast<const float*>(src)[i];
      return;
    case GgmlType::F16:
      convert_row_f16_to_f32(reinterpret_cast<const uint16_t*>(src), dst, ne0);
      return;
    case GgmlType::BF16:
      convert_row_bf16_to_f32(reinterpret_cast<const uint16_t*>(src), dst, ne0);
      return;
    default:
      fail("cannot read rows of type ", ggml_type_name(type));
  }
}

}  // namespace

QuantizeReport quantize_model(const std::string& in, const std::string& out, const Ftype& ftype,
                              ThreadPool& pool, const QuantizeProgress& progress,
                              const TypeRuleOptions& options) {
  const gguf::File file = gguf::File::open(in);
  std::vector<TensorDesc> descs;
  for (const gguf::TensorInfo& t : file.tensors())
    descs.push_back({t.name, t.n_dims, t.ne[0], t.type});
  const std::vector<GgmlType> types =
      choose_types(ftype, ModelShape::from_gguf(file), descs, options);

  gguf::Writer writer;
  for (const auto& [key, value] : file.metadata()) {
    if (key == "general.alignment") continue;  // the writer sets its own
    writer.set(key, value);
  }
  writer.set("general.quantization_version", gguf::Value::u32(2));  // GGML_QNT_VERSION
  writer.set("general.file_type", gguf::Value::u32(ftype.file_type));

  QuantizeReport report;
  const int total = static_cast<int>(file.tensors().size());
  auto done = std::make_shared<int>(0);
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const gguf::TensorInfo& t = file.tensors()[i];
    const GgmlType target = types[i];
    report.bytes_in += t.bytes;
    ++report.types[target];
    std::vector<uint64_t> ne(t.ne, t.ne + t.n_dims);
    if (target == t.type) {
      ++report.kept;
      report.bytes_out += t.bytes;
      writer.add_tensor(t.name, t.type, ne, [&progress, done, total, &t](std::span<uint8_t> dst) {
        std::copy(t.data, t.data + t.bytes, dst.begin());
        if (progress) progress(++*done, total, t.name);
      });
      continue;
    }
    if (!is_float(t.type))
      fail("quantize: tensor '", t.name, "' is already ", ggml_type_name(t.type),
           "; quantize from an F32/F16/BF16 model");
    if (!can_quantize_to(target))
      fail("quantize: tensor '", t.name, "' would be ", ggml_type_name(target),
           ", which xtile cannot write");
    ++report.quantized;
    const int64_t ne0 = static_cast<int64_t>(t.ne[0]);
    const int64_t rows = static_cast<int64_t>(t.elements() / t.ne[0]);
    const size_t in_row = ggml_row_bytes(t.type, t.ne[0]);
    const size_t out_row = ggml_row_bytes(target, t.ne[0]);
    report.bytes_out += out_row * static_cast<uint64_t>(rows);
    writer.add_tensor(t.name, target, ne,
                      [&pool, &progress, done, total, &t, ne0, rows, in_row, out_row,
                       target](std::span<uint8_t> dst) {
                        pool.parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1, int) {
                          std::vector<float> row(static_cast<size_t>(ne0));
                          for (int64_t r = r0; r < r1; ++r) {
                            row_to_f32(t.type, t.data + r * in_row, ne0, row.data());
                            quantize_row(target, row.data(), dst.data() + r * out_row, ne0);
                          }
                        });
                        if (progress) progress(++*done, total, t.name);
                      });
  }
  writer.write(out);
  return report;
}

QuantizeReport quantize_model(const std::string& in, const std::string& out, GgmlType target,
                              ThreadPool& pool, const QuantizeProgress& progress) {
  const Ftype* f = ftype_for_type(target);
  if (!f)
    fail("quantize: no file type has base type ", ggml_type_name(target),
         "; types: ", ftype_names());
  TypeRuleOptions pure;
  pure.pure = true;
  return quantize_model(in, out, *f, pool, progress, pure);
}

}  // namespace xtile
