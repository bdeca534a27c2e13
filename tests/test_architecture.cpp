// core/architecture's table of named models, walked entry by entry: whatever is
// added there is tried here with the runtime (models/zoo), the printouts, the
// model files and their detection, and the training defaults, with no list of
// names in this file.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/architecture.hpp"
#include "models/zoo.hpp"
#include "runtime/error.hpp"
#include "runtime/network.hpp"
#include "runtime/optim.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/schedule.hpp"

using namespace sgdx;

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

ModelSpec spec_of(uint32_t arch, size_t rows = 28, size_t cols = 28, size_t classes = 10) {
    ModelSpec s;
    s.architecture = core::kArchitectures[arch].name;
    s.rows = rows, s.cols = cols, s.classes = classes;
    if (arch == core::kMlp) s.hidden = {32, 16};
    return s;
}

// Every parameter and buffer of a by name and value in b.
void check_same_weights(Module& a, Module& b) {
    SafetensorsFile fa, fb;
    model_tensors(a, fa);
    model_tensors(b, fb);
    REQUIRE(fa.tensors.size() == fb.tensors.size());
    for (const auto& [tensor_name, t] : fa.tensors) {
        const std::string& name = tensor_name;  // clang 14 (emcc) cannot capture a structured binding
        CAPTURE(name);
        REQUIRE(fb.tensors.count(name));
        CHECK(fb.tensors.at(name).shape == t.shape);
        CHECK(fb.tensors.at(name).values == t.values);
        CHECK(fb.tensors.at(name).ints == t.ints);
    }
}

// The image sizes an entry is tried at: MNIST's, and one larger and not square.
struct Size {
    size_t rows, cols, classes;
};
const Size kSizes[] = {{28, 28, 10}, {32, 30, 7}};

}  // namespace

TEST_CASE("every named architecture has a name of its own, listed by the CLI, the page and the C API") {
    REQUIRE(core::kArchCount >= 1);
    const std::vector<std::string>& names = model_names();
    REQUIRE(names.size() == core::kArchCount);
    char list[512];
    core::Text t(list, sizeof list);
    core::list_architectures(t);
    for (uint32_t i = 0; i < core::kArchCount; ++i) {
        const core::Architecture& a = core::kArchitectures[i];
        CAPTURE(a.name);
        CHECK(std::strlen(a.name) > 0);
        CHECK(core::arch_id(core::span(a.name)) == int(i));  // no name twice
        CHECK(names[i] == a.name);
        CHECK(std::string(list).find(a.name) != std::string::npos);
        CHECK(!core::is_printout(core::span(a.name)));
        // Only the tutorial's two classes have runtime modules of their own;
        // every other entry is an nn.Sequential of its layers.
        CHECK(core::is_sequential(i) == (std::strcmp(a.torch_class, "Sequential") == 0));
        if (!core::is_sequential(i)) CHECK((i == core::kLogistic || i == core::kCnn));
        CHECK(bool(a.layers));
        CHECK(a.has[0].name != nullptr);
    }
    // The entries code singles out are where the enum says.
    CHECK(std::string(core::kArchitectures[core::kLogistic].name) == "logistic");
    CHECK(std::string(core::kArchitectures[core::kCnn].name) == "cnn");
    CHECK(std::string(core::kArchitectures[core::kCnnSequential].name) == "cnn_sequential");
    CHECK(std::string(core::kArchitectures[core::kMlp].name) == "mlp");
    CHECK(core::is_sequential(core::kCustom));
    CHECK(!core::is_sequential(core::kArchCount));
    CHECK(core::arch_id(core::span("sequential")) < 0);
}

TEST_CASE("every named architecture's training defaults are settings sgdx train and the page take") {
    const auto check = [](const TrainingDefaults& d, const core::Training& t) {
        CHECK(d.optimizer == t.optimizer);
        CHECK(d.lr == t.lr);
        CHECK(d.momentum == t.momentum);
        CHECK(d.lr_gamma == t.lr_gamma);
        CHECK(d.schedule == t.schedule);
        CHECK(d.epochs == int(t.epochs));
        CHECK(contains(optimizer_names(), d.optimizer));
        CHECK(contains(schedule_names(), d.schedule));
        CHECK((std::isfinite(d.lr) && d.lr > 0.f));
        CHECK((d.momentum >= 0.f && d.momentum < 1.f));
        if (d.optimizer != "sgd") CHECK(d.momentum == 0.f);  // the CLI refuses --momentum for Adam
        CHECK((d.lr_gamma >= 1e-6 && d.lr_gamma <= 1.0));     // --lr-gamma's range
        CHECK((d.epochs >= 1 && d.epochs <= 100000));          // --epochs' range
    };
    for (uint32_t i = 0; i < core::kArchCount; ++i) {
        CAPTURE(core::kArchitectures[i].name);
        check(default_training(core::kArchitectures[i].name), core::kArchitectures[i].training);
    }
    // --help lists each model's own defaults.
    for (uint32_t i = 0; i < core::kArchCount; ++i) {
        const core::Architecture& a = core::kArchitectures[i];
        const core::Training& t = a.training;
        CAPTURE(a.name);
        const std::string name = std::string("; ") + a.name + " ";
        CHECK((std::string(t.optimizer) == core::kCustomTraining.optimizer) ==
              (default_help("optimizer").find(name + t.optimizer) == std::string::npos));
        CHECK((std::string(t.schedule) == core::kCustomTraining.schedule) ==
              (default_help("schedule").find(name + t.schedule) == std::string::npos));
        CHECK((t.epochs == core::kCustomTraining.epochs) ==
              (default_help("epochs").find(name + std::to_string(t.epochs)) == std::string::npos));
        CHECK((t.lr == core::kCustomTraining.lr) == (default_help("lr").find(name) == std::string::npos));
        CHECK((t.lr_gamma == core::kCustomTraining.lr_gamma) == (default_help("lr_gamma").find(name) == std::string::npos));
    }
    CHECK(default_help("epochs").rfind(std::to_string(core::kCustomTraining.epochs) + ";", 0) == 0);
    CHECK(default_help("momentum").find("; bncnn") == std::string::npos);  // Adam: no momentum to tell
    CHECK_THROWS_AS(default_help("betas"), Error);
    // A network without a name of its own: the tutorial's CNN chapter's.
    check(default_training("sequential"), core::kCustomTraining);
    CHECK(default_training("sequential").optimizer == "sgd");
    CHECK(default_training("sequential").lr == 0.1f);
    CHECK(default_training("sequential").momentum == 0.9f);
    CHECK(default_training("sequential").epochs == 2);
}

TEST_CASE("every named architecture builds, prints as PyTorch does, saves and is recognised again") {
    for (uint32_t i = 0; i < core::kArchCount; ++i) {
        for (const Size& size : kSizes) {
            const ModelSpec spec = spec_of(i, size.rows, size.cols, size.classes);
            CAPTURE(describe(spec));
            auto model = make_model(spec, 5);
            REQUIRE(model);
            CHECK(model->in_features() == size.rows * size.cols);
            CHECK(model->out_features() == size.classes);
            const auto meta = model_metadata(spec);
            CHECK(meta.at("model") == core::kArchitectures[i].torch_class);
            CHECK(meta.at("classes") == std::to_string(size.classes));
            if (core::is_sequential(i)) {
                // Its file names it by its printout, which builds the same network again.
                const std::string printout = meta.at("architecture");
                CHECK(printout.rfind("Sequential(", 0) == 0);
                const ModelSpec custom = model_spec_from_text(printout);
                CHECK(printout_text(custom.layers) == printout);
                auto again = make_model(
                    [&] {
                        ModelSpec c = custom;
                        c.rows = spec.rows, c.cols = spec.cols, c.classes = spec.classes;
                        return c;
                    }(),
                    5);
                check_same_weights(*model, *again);
            } else {
                CHECK(meta.at("architecture") == core::kArchitectures[i].name);
            }
            // sgdx's file: the metadata says what it is.
            const std::vector<uint8_t> bytes = encode_model(*model, meta);
            const SafetensorsFile file = parse_safetensors(bytes.data(), bytes.size(), "m.safetensors");
            const ModelSpec back = model_spec_of(file, "m.safetensors");
            CHECK(back.architecture == spec.architecture);
            CHECK(back.rows == spec.rows);
            CHECK(back.cols == spec.cols);
            CHECK(back.classes == spec.classes);
            CHECK(back.hidden == (i == core::kMlp ? spec.hidden : std::vector<size_t>{}));
            auto loaded = make_model(back, 9);
            load_model(*loaded, file, "m.safetensors");
            check_same_weights(*model, *loaded);
            // PyTorch's file (its state_dict, no metadata): the tensor names say
            // which model it is and the class count; the convolutional ones are
            // taken as 28x28, the others' image size is their first layer's.
            if (size.rows != 28 || size.cols != 28) continue;
            const ModelSpec spec7 = spec_of(i, 28, 28, 7);
            auto model7 = make_model(spec7, 6);
            const std::vector<uint8_t> plain = encode_model(*model7);
            const SafetensorsFile pt = parse_safetensors(plain.data(), plain.size(), "pt.safetensors");
            REQUIRE(pt.metadata.count("architecture") == 0);
            const ModelSpec found = model_spec_of(pt, "pt.safetensors");
            CHECK(found.architecture == spec7.architecture);
            CHECK(found.classes == 7);
            CHECK(found.rows == 28);
            CHECK(found.cols == 28);
            CHECK(found.hidden == (i == core::kMlp ? spec7.hidden : std::vector<size_t>{}));
        }
    }
}

TEST_CASE("a file no entry recognises is refused with what each entry's files hold") {
    SafetensorsFile f;
    f.tensors["fc.weight"] = {{2, 3}, std::vector<float>(6)};
    CHECK_THROWS_WITH_AS(model_spec_of(f, "f.safetensors"),
                         doctest::Contains("f.safetensors: cannot tell which model this is: its metadata names no "
                                           "architecture, and its tensors (fc.weight [2, 3]) are none of sgdx's "
                                           "models' (logistic: lin.weight (2-d); "),
                         Error);
    for (uint32_t i = 0; i < core::kArchCount; ++i) {
        const core::Architecture& a = core::kArchitectures[i];
        const std::string held = std::string(a.name) + ": " + a.has[0].name + " (" + std::to_string(a.has[0].rank) + "-d)";
        CHECK_THROWS_WITH_AS(model_spec_of(f, "f.safetensors"), doctest::Contains(held.c_str()), Error);
    }
}

TEST_CASE("an architecture's smallest image side is the smallest its layers take") {
    for (uint32_t i = 0; i < core::kArchCount; ++i) {
        const core::Architecture& a = core::kArchitectures[i];
        if (a.min_side == 0) continue;
        CAPTURE(a.name);
        const size_t side = a.min_side;
        CHECK(make_model(spec_of(i, side, side), 1)->out_features() == 10);
        // One pixel less is refused by the zoo, in one sentence...
        for (const Size& small : {Size{side - 1, side, 10}, Size{side, side - 1, 10}}) {
            const ModelSpec spec = spec_of(i, small.rows, small.cols);
            const std::string why = "model " + spec.architecture + " for " + std::to_string(small.rows) + "x" +
                                    std::to_string(small.cols) + " images: needs images of at least " +
                                    std::to_string(side) + "x" + std::to_string(side);
            CHECK_THROWS_WITH_AS(make_model(spec, 1), why.c_str(), Error);
            // ...where the layers themselves would not fit the image.
            std::vector<uint64_t> hidden(spec.hidden.begin(), spec.hidden.end());
            core::Spec c;
            c.arch = i, c.rows = small.rows, c.cols = small.cols, c.classes = 10;
            c.hidden = hidden.data(), c.hidden_cap = c.n_hidden = uint32_t(hidden.size());
            uint32_t n = 0;
            core::model_layers(c, nullptr, 0, n);
            LayerList layers(n);
            REQUIRE(core::model_layers(c, layers.data(), n, n));
            Rng rng(1);
            CHECK_THROWS_AS(build_network(layers, network_input(layers, small.rows, small.cols), rng, 1), Error);
        }
    }
}

TEST_CASE("image_size: a square count of pixels is a square image, any other one row") {
    const uint64_t big = (uint64_t(1) << 32) - 1;  // the largest side whose square fits 64 bits
    for (uint64_t side : {uint64_t(1), uint64_t(2), uint64_t(27), uint64_t(28), uint64_t(65535), uint64_t(65536),
                          uint64_t(3037000499), big}) {
        CAPTURE(side);
        uint64_t rows = 0, cols = 0;
        core::image_size(side * side, rows, cols);
        CHECK((rows == side && cols == side));
        for (uint64_t n : {side * side - 1, side * side + 1}) {
            if (n == 0 || (side == big && n < side * side)) continue;
            core::image_size(n, rows, cols);
            const bool square = rows == cols && rows * cols == n && rows > 1;
            CHECK((square || (rows == 1 && cols == n)));
            CHECK(rows * cols == n);
        }
    }
    uint64_t rows = 9, cols = 9;
    core::image_size(0, rows, cols);
    CHECK((rows == 0 && cols == 0));
}
