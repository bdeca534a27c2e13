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
    std::vector<float> values;
};

struct SafetensorsFile {
    std::map<std::string, TensorData> tensors;
    std::map<std::string, std::string> metadata;
};

// The reading, checking and header writing are core/safetensors' (allocation-free,
// shared with the C API); these add the maps, the decoded strings and the values.
// Throws sgdx::Error naming `source` for anything malformed: short file, header
// length past the end, invalid JSON, a dtype other than F32, shapes that disagree
// with offsets, offsets out of order, overlapping or past the data.
SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& source);
std::vector<uint8_t> encode_safetensors(const SafetensorsFile& file);

// Module <-> file. save_model writes atomically. load_model checks that names and
// shapes match the module's exactly and leaves the module unchanged on error.
std::vector<uint8_t> encode_model(Module& model, const std::map<std::string, std::string>& metadata = {});
void save_model(Module& model, const std::string& path, const std::map<std::string, std::string>& metadata = {});
void load_model(Module& model, const SafetensorsFile& file, const std::string& source);
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace sgdx
