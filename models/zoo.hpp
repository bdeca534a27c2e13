#pragma once
// The models sgdx offers by name, and how a model file says which one it holds.
//
//   logistic        the tutorial's Mnist_Logistic: Linear(784, 10)        lin.*
//   cnn             the tutorial's Mnist_CNN: 3 x (Conv2d 3x3 stride 2 + ReLU),
//                   avg_pool2d(4)                                        conv1.* conv2.* conv3.*
//   cnn_sequential  the same network as the tutorial's nn.Sequential, with
//                   Lambda(preprocess) and AdaptiveAvgPool2d(1)            1.* 3.* 5.*
//   mlp             nn.Sequential(Linear(784, H), ReLU(), Linear(H, 10)),
//                   more hidden layers with --hidden 256,128              0.* 2.* ...
//   lenet           LeNet-like, ReLU and max pooling: Conv2d(1, 16, 5), MaxPool2d(2),
//                   Conv2d(16, 32, 5), MaxPool2d(2), Linear(512, 128), Linear(128, 10);
//                   lr 0.05 x 0.7 per epoch: 0.99 test accuracy after 3 epochs   1.* 4.* 8.* 10.*
//   bncnn           BatchNorm CNN: 3 x (Conv2d 3x3 pad 1 without bias, BatchNorm2d, ReLU,
//                   MaxPool2d(2)) with 16, 32, 64 channels, Linear(576, 128) without bias,
//                   BatchNorm1d, ReLU, Linear(128, 10); Adam with OneCycleLR peaking at
//                   5e-3: 0.99 test accuracy after one epoch           1.* 2.* ... 17.*
//
// Any other nn.Sequential of the layers sgdx has is given by what PyTorch prints
// for it (runtime/network.hpp); the three Sequentials above are written into
// model files that way too, and recognised by it.
//
// A saved model records its architecture in the safetensors __metadata__
// ("architecture", "hidden", "image_rows", "image_cols", "classes"; PyTorch's
// loaders ignore it), so eval, predict and --resume need no --model. A file
// without it (written by torch + safetensors) is recognised by its tensor names.
// The architecture table, that metadata and the detection are core/architecture's,
// which the C API (device/) uses too: both read the same files the same way.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../runtime/module.hpp"
#include "../runtime/network.hpp"
#include "../runtime/optim.hpp"
#include "../runtime/safetensors.hpp"

namespace sgdx {

struct ModelSpec {
    std::string architecture = "logistic";  // a name above, or "sequential": a printout's network
    std::vector<size_t> hidden;  // mlp only; empty: {128}
    size_t rows = 28, cols = 28, classes = 10;
    LayerList layers;            // "sequential" only: its layers (runtime/network.hpp)
};

// --model's word: one of model_names(), a printout (PyTorch's print(model) of an
// nn.Sequential), or the path of a text file holding one. Throws sgdx::Error
// saying which it is not; a printout's errors start "<source>: " (none if empty).
ModelSpec model_spec_from_text(const std::string& text, const std::string& source = "--model");

// "logistic, cnn, cnn_sequential, mlp, lenet"
const std::vector<std::string>& model_names();

// The model, its weights drawn from `seed` (PyTorch's default initialisation).
// Throws sgdx::Error if the architecture is unknown or does not fit the image size
// or class count.
std::unique_ptr<Module> make_model(const ModelSpec& spec, uint64_t seed = 0);

// The spec in one phrase for people: "mlp 784-128-10".
std::string describe(const ModelSpec& spec);

std::map<std::string, std::string> model_metadata(const ModelSpec& spec);

// How a model trains unless told otherwise: the optimiser ("sgd", "adam",
// "adamw"), its lr (and SGD's momentum), and the schedule (schedule.hpp). The
// values are its entry's in core/architecture's table; a network without a
// name of its own ("sequential") trains as the tutorial's CNN chapter does.
struct TrainingDefaults {
    std::string optimizer;
    float lr = 0.f, momentum = 0.f;
    double lr_gamma = 1.0;
    std::string schedule;
    int epochs = 0;  // what the model needs for its accuracy
};
TrainingDefaults default_training(const std::string& architecture);

// For --help: a training setting's default ("optimizer", "lr", "momentum",
// "lr_gamma", "schedule" or "epochs"), then each named model's own where it
// differs: "2; lenet 3; bncnn 1" for "epochs" (momentum: the SGD models').
std::string default_help(const std::string& setting);

// A model's sensible SGD settings: the tutorial's lr 0.5 for the logistic model;
// lr 0.1 with momentum 0.9 (its CNN chapter's) for the networks.
SgdOptions default_sgd(const std::string& architecture);
// The factor the learning rate shrinks by after each epoch (1: constant, the
// tutorial's way; lenet 0.7 as PyTorch's MNIST example, which it needs for 0.99).
double default_lr_gamma(const std::string& architecture);

// What a file holds: its metadata if it has it, else what its tensor names say.
// Throws sgdx::Error naming `source` if neither tells.
ModelSpec model_spec_of(const SafetensorsFile& file, const std::string& source);

// The model a file holds, with its weights. Throws sgdx::Error naming `source`
// and, for a wrong tensor, its name and the expected and found shapes.
std::unique_ptr<Module> model_from_file(const SafetensorsFile& file, const std::string& source,
                                        ModelSpec* spec = nullptr);
// The same, read from `path` (the CLI; the page receives the file's bytes).
std::unique_ptr<Module> load_model_file(const std::string& path, ModelSpec* spec = nullptr);

}  // namespace sgdx
