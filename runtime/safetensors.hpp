#pragma once
// Model files in the safetensors format: 8-byte little-endian header length N,
// N bytes of JSON {"name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]},
// "__metadata__": {...}}, then the raw little-endian data. PyTorch users load them
// with safetensors.torch.load_file straight into Mnist_Logistic's state_dict.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "module.hpp"

namespace sgdx {

struct TensorData {
    std::vector<size_t> shape;
    std::vector<float> values;   // dtype F32
    DType dtype = DType::F32;
    std::vector<int64_t> ints;   // dtype I64 (shape [] holds one value)
};

struct SafetensorsFile {
    std::map<std::string, TensorData> tensors;
    std::map<std::string, std::string> metadata;
};

// The reading, checking and header writing are core/safetensors' (allocation-free,
// shared with the C API); these add the maps, the decoded strings and the values.
// Throws sgdx::Error naming `source` for anything malformed: short file, header
// length past the end, invalid JSON, a dtype other than F32 and I64, shapes that
// disagree with offsets, offsets out of order, overlapping or past the data.
SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& source);
std::vector<uint8_t> encode_safetensors(const SafetensorsFile& file);

// Module <-> file: the parameters and the buffers (named_parameters and
// named_buffers, as in PyTorch's state_dict). save_model writes atomically.
// load_model checks that names, shapes and dtypes match the module's exactly and
// leaves the module unchanged on error.
// model_tensors adds the module's tensors to `file` (for checkpoints too).
void model_tensors(Module& model, SafetensorsFile& file);
std::vector<uint8_t> encode_model(Module& model, const std::map<std::string, std::string>& metadata = {});
void save_model(Module& model, const std::string& path, const std::map<std::string, std::string>& metadata = {});
void load_model(Module& model, const SafetensorsFile& file, const std::string& source);
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace sgdx
