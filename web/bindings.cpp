// The browser's trainer: any of the runtime's models (models/zoo's names, or any
// nn.Sequential as PyTorch prints it), its optimiser (SGD, Adam, AdamW) and
// schedule, and the loaders behind embind, driven from a Web Worker (web/worker.js). Training runs in time-boxed slices (step) so
// the worker can answer pause, predict and load requests between slices; each
// slice and each epoch end return plain JS objects for the page's charts.
//
// Every entry point catches sgdx::Error and returns its message: a JS caller gets
// {error: "..."} instead of an opaque WebAssembly exception.
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>
#include <emscripten/val.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "models/mnist_logistic.hpp"
#include "models/zoo.hpp"
#include "runtime/kernels/kernels.hpp"
#include "runtime/sgdx.hpp"
#include "web/relaxed/relaxed_kernels.hpp"

using emscripten::val;

namespace sgdx::web {
namespace {

const uint8_t* bytes_of(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// A JS typed array holding a copy of [data, data + n): the wasm memory may grow
// (and detach views) before the JS side reads it.
template <class T>
val copy_to_js(const T* data, size_t n) {
    return val(emscripten::typed_memory_view(n, data)).call<val>("slice");
}

val error_result(const std::string& message) {
    val out = val::object();
    out.set("error", message);
    return out;
}

template <class Fn>
val guarded(Fn&& fn) {
    try {
        return fn();
    } catch (const std::exception& e) {
        return error_result(e.what());
    }
}

// The optimisers the page offers, by the CLI's --optimizer names.
// A model's training defaults as the page shows them.
void set_defaults(val& out, const std::string& architecture) {
    const TrainingDefaults d = default_training(architecture);
    out.set("optimizer", d.optimizer);
    out.set("lr", d.lr);
    out.set("momentum", d.momentum);
    out.set("lrGamma", d.lr_gamma);
    out.set("schedule", d.schedule);
    out.set("epochs", d.epochs);
}

// The page's optimiser: its name, lr and (SGD's) momentum; PyTorch's defaults
// for the rest (AdamW's weight decay 1e-2).
std::unique_ptr<Optimizer> page_optimizer(const std::string& name, const std::vector<Parameter*>& params, float lr,
                                          float momentum) {
    SgdOptions sgd;
    sgd.lr = lr, sgd.momentum = momentum;
    AdamOptions adam = name == "adamw" ? adamw_options() : AdamOptions{};
    adam.lr = lr;
    return make_optimizer(name, params, sgd, adam);
}

// The runtime's models, for the page's picker: [{name, description, parameters,
// optimizer, lr, momentum, lrGamma, schedule, epochs}], in model_names()' order.
val models() {
    val list = val::array();
    for (const std::string& name : model_names()) {
        ModelSpec spec;
        spec.architecture = name;
        val m = val::object();
        m.set("name", name);
        m.set("description", describe(spec));
        try {
            m.set("parameters", make_model(spec, 0)->parameter_count());
        } catch (const std::exception&) {
        }
        set_defaults(m, name);
        list.call<void>("push", m);
    }
    return list;
}

// What the page's option lists hold: {optimizers, schedules}.
val options() {
    val out = val::object();
    val opt = val::array(), sch = val::array();
    for (const auto& n : optimizer_names()) opt.call<void>("push", n);
    for (const auto& n : schedule_names()) sch.call<void>("push", n);
    out.set("optimizers", opt);
    out.set("schedules", sch);
    return out;
}

// The kernels: the relaxed-SIMD set where the engine runs relaxed SIMD and
// `relaxed` is true, else SIMD128 (web/relaxed). Returns the set's name.
std::string select_kernels(bool relaxed) {
    const kernels::KernelSet* set = relaxed ? kernels::wasm_relaxed_simd() : nullptr;
    set_kernels(set ? *set : kernels::by_name("wasm_simd128"));
    return active_kernels().name;
}

// The threads the runtime's layers split a batch over: `n` (at least 1) in the
// threaded build (sgdx_web_mt, loaded when the page is cross-origin isolated),
// always 1 in the single-thread one. Returns the number now in use.
int set_threads(int n) {
#ifdef SGDX_WEB_THREADS
    set_num_threads(size_t(std::clamp(n, 1, 16)));
#else
    (void)n;
#endif
    return int(thread_pool().size());
}

}  // namespace

class Trainer {
public:
    Trainer() { reset(0); }

    // Switches to another model: `text` is one of model_names() ("mlp" with
    // `hidden`, its widths, e.g. "128" or "256,128") or an nn.Sequential as PyTorch
    // prints it. Fresh weights from `seed`. Returns model_info(); on an error (the
    // core's message for a bad printout) the current model is kept.
    val set_model(const std::string& text, const std::string& hidden, double seed) {
        return guarded([&] {
            ModelSpec spec = spec_of_text(text);
            if (spec.architecture == "mlp" && !hidden.empty()) {
                size_t at = 0;
                while (at <= hidden.size()) {
                    size_t end = hidden.find(',', at);
                    if (end == std::string::npos) end = hidden.size();
                    const std::string w = hidden.substr(at, end - at);
                    if (w.empty() || w.find_first_not_of("0123456789") != std::string::npos || w.size() > 5 ||
                        std::stoul(w) == 0)
                        throw Error("hidden widths must be whole numbers from 1, separated by commas: '" + hidden + "'");
                    spec.hidden.push_back(std::stoul(w));
                    at = end + 1;
                }
            }
            auto model = make_model(spec, uint64_t(seed));
            check_fits(*model, spec);
            adopt(std::move(model), spec);
            return model_info();
        });
    }

    // The model: {architecture ("sequential" for a printout's network),
    // description, parameters, layers (one line each), printout (PyTorch's
    // print(model), for a printout's network), its training defaults (optimizer,
    // lr, momentum, lrGamma, schedule, epochs), firstLayer: "linear" | "conv" |
    // "" (its first learning layer), hasLayers (whether activations() has layers
    // to show)}.
    val model_info() const {
        val out = val::object();
        out.set("architecture", spec_.architecture);
        out.set("description", describe(spec_));
        out.set("parameters", model_->parameter_count());
        const bool custom = spec_.architecture == "sequential";
        out.set("printout", custom ? printout_text(spec_.layers) : std::string());
        out.set("layers", custom ? printout_text(spec_.layers) : model_->describe());
        set_defaults(out, spec_.architecture);
        std::string hidden;
        for (size_t h : spec_.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(h);
        out.set("hidden", hidden);
        const Parameter* w = first_weight();
        out.set("firstLayer", !w ? std::string() : w->value.dimension() == 4 ? std::string("conv") : std::string("linear"));
        // what activations() can show: a Sequential of more than its output layer
        const auto* seq = dynamic_cast<const Sequential*>(model_.get());
        out.set("hasLayers", seq != nullptr && seq->size() > 1);
        return out;
    }

    // The training IDX files as bytes; the last `valid_size` images are held out
    // for validation, as in the tutorial and `sgdx train`. Loaded apart from the
    // test files so only one set's bytes are in the wasm heap at a time.
    val load_training(const std::string& images, const std::string& labels, int valid_size) {
        return guarded([&] {
            TensorDataset all = make_set(images, "train-images-idx3-ubyte", labels, "train-labels-idx1-ubyte");
            if (valid_size < 0 || size_t(valid_size) >= all.size())
                throw Error("validation size " + std::to_string(valid_size) + " leaves no training data");
            const size_t n_train = all.size() - size_t(valid_size);
            session_.reset();
            train_set_ = std::make_unique<TensorDataset>(all.slice(0, n_train, "training set"));
            valid_set_ = valid_size ? std::make_unique<TensorDataset>(all.slice(n_train, all.size(), "validation set"))
                                    : nullptr;
            train_loader_.reset();
            val out = val::object();
            out.set("train", train_set_->size());
            out.set("valid", size_t(valid_size));
            out.set("kernels", std::string(active_kernels().name));
            return out;
        });
    }

    // The test IDX files; without held-out training images they also validate.
    val load_test(const std::string& images, const std::string& labels) {
        return guarded([&] {
            TensorDataset test = make_set(images, "t10k-images-idx3-ubyte", labels, "t10k-labels-idx1-ubyte");
            session_.reset();
            test_set_ = std::make_unique<TensorDataset>(test);
            if (!valid_set_) valid_set_ = std::make_unique<TensorDataset>(test);
            valid_loader_ = std::make_unique<DataLoader>(*valid_set_, 1000, false);
            test_loader_ = std::make_unique<DataLoader>(*test_set_, 1000, false);
            val out = val::object();
            out.set("test", test_set_->size());
            return out;
        });
    }

    // Fresh weights from `seed` (PCG32: the same as `sgdx train --seed`).
    void reset(double seed) { adopt(make_model(spec_, uint64_t(seed)), spec_); }

    // Options for a run of `epochs` epochs from the model's current weights:
    // `optimizer` ("sgd", "adam", "adamw"; momentum is SGD's), `schedule` ("step":
    // lr_gamma scales the rate after each epoch, PyTorch's StepLR(1, gamma), 1
    // keeps it; "onecycle", "cosine": over the run's batches, peaking at / starting
    // from lr). The epoch's order starts again from `seed`; the optimiser's state
    // (momentum, Adam's moments) starts empty.
    val configure(double lr, double momentum, double batch_size, double seed, double lr_gamma,
                  const std::string& optimizer, const std::string& schedule, double epochs) {
        return guarded([&] {
            if (!(lr_gamma > 0 && lr_gamma <= 1)) throw Error("lr gamma must be in (0, 1]");
            if (!train_set_ || !test_set_) throw Error("the data is not loaded yet");
            if (!(batch_size >= 1 && batch_size <= 60000 && batch_size == std::floor(batch_size)))
                throw Error("batch size must be a whole number from 1 to 60000");
            if (!(epochs >= 1 && epochs <= 100000 && epochs == std::floor(epochs)))
                throw Error("epochs must be a whole number from 1 to 100000");
            const LrSchedule sched = parse_schedule(schedule);
            if (!(lr >= 0 && lr <= 3.4e38)) throw Error("lr must be a number from 0");
            auto opt = page_optimizer(optimizer, model_->parameters(), float(lr), float(momentum));
            session_.reset();  // it holds the old optimiser and loader
            opt_ = std::move(opt);
            optimizer_ = optimizer;
            momentum_ = float(momentum);
            base_lr_ = float(lr);
            lr_gamma_ = lr_gamma;
            schedule_ = sched;
            epochs_ = int(epochs);
            train_loader_ = std::make_unique<DataLoader>(*train_set_, size_t(batch_size), true,
                                                         uint64_t(seed));
            // step() hands the loader's bytes to the fused uint8 kernels, so float
            // copies of each batch would be made for nothing (they were 10% of the
            // worker's time in a Chromium profile).
            train_loader_->set_float_inputs(false);
            return val::object();
        });
    }

    // Trains batches for about `budget_ms`, stopping early at the end of an epoch:
    // a time slice of the runtime's TrainingSession (runtime/train.hpp), so the page
    // trains, schedules, validates and stops on divergence as `sgdx train` does.
    // Returns {losses (per batch), epoch, batch, batches, samples, seconds}, plus
    // {epochEnd, trainLoss, validLoss, validAcc} after an epoch's last batch. On a
    // divergence the model is back at the end of its last good epoch and {error}
    // holds the CLI's message.
    val step(double budget_ms) {
        return guarded([&] {
            if (!opt_ || !train_loader_) throw Error("call configure before step");
            TrainingSession& s = session();
            const size_t samples_before = s.state().next_batch == 0 ? 0 : s.state().samples;
            const double start = emscripten_get_now();
            try {
                s.advance([&] { return emscripten_get_now() - start >= budget_ms; });
            } catch (...) {
                session_.reset();  // the next Start begins an epoch from the restored model
                throw;
            }
            const TrainingState& st = s.state();
            const EpochRecord* end = s.epoch_end();
            const std::vector<float>& losses = s.batch_losses();
            val out = val::object();
            out.set("losses", copy_to_js(losses.data(), losses.size()));
            out.set("samples", st.samples - samples_before);
            out.set("seconds", (emscripten_get_now() - start) / 1000.0);
            out.set("batch", end ? train_loader_->size() : st.next_batch);
            out.set("batches", train_loader_->size());
            out.set("epoch", end ? end->epoch : st.epoch);
            if (end) {
                out.set("epochEnd", true);
                out.set("trainLoss", end->train_loss);
                out.set("validLoss", end->valid_loss);
                out.set("validAcc", end->valid_acc);
            }
            return out;
        });
    }

    // Test-set loss, accuracy and the (10, 10) confusion matrix (rows: truth).
    val test() {
        return guarded([&] {
            if (!test_loader_) throw Error("the test data is not loaded yet");
            ConfusionMatrix cm;
            EvalResult r = evaluate(*model_, *test_loader_, ws_, &cm);
            std::vector<uint32_t> counts(cm.counts.begin(), cm.counts.end());
            val out = val::object();
            out.set("loss", r.loss);
            out.set("accuracy", r.accuracy);
            out.set("confusion", copy_to_js(counts.data(), counts.size()));
            return out;
        });
    }

    // The first learning layer's weight in PyTorch's layout: {shape, data}:
    // (units, inputs) for a Linear, (filters, 1, k, k) for a Conv2d; null if the
    // network has neither.
    val first_layer() const {
        const Parameter* w = first_weight();
        if (!w) return val::null();
        val shape = val::array();
        for (size_t d : w->value.shape()) shape.call<void>("push", d);
        val out = val::object();
        out.set("shape", shape);
        out.set("data", copy_to_js(w->value.data(), w->value.size()));
        return out;
    }

    // What the network computes for one image (uint8 pixels), layer by layer:
    // [{name, type, shape, data}] with each child's output in PyTorch's layout
    // ((C, H, W) maps, or (units)), the logits last. Empty for the logistic model.
    val activations(const std::string& pixels) {
        return guarded([&] {
            check_pixels(pixels.size());
            return activations_of(bytes_of(pixels));
        });
    }

    // One 28x28 image of uint8 pixels (white digit on black, as MNIST): class
    // probabilities, computed as `sgdx predict` does (pixels / 255, softmax in double).
    val predict(const std::string& pixels) {
        return guarded([&] {
            check_pixels(pixels.size());
            return probabilities(bytes_of(pixels));
        });
    }

    // Test image `index`: {pixels, label, probs, predicted}.
    val test_image(int index) {
        return guarded([&] {
            if (!test_set_) throw Error("the test data is not loaded yet");
            if (index < 0 || size_t(index) >= test_set_->size())
                throw Error("test image " + std::to_string(index) + " is outside 0.." +
                            std::to_string(test_set_->size() - 1));
            const uint8_t* px = test_set_->image(size_t(index));
            val out = probabilities(px);
            out.set("pixels", copy_to_js(px, test_set_->features()));
            out.set("label", int(test_set_->label(size_t(index))));
            out.set("layers", activations_of(px));
            return out;
        });
    }

    // The predicted class of test images [first, first + count).
    val test_predictions(int first, int count) {
        return guarded([&] {
            if (!test_set_) throw Error("the test data is not loaded yet");
            if (first < 0 || count < 0) throw Error("test images: first and count must be from 0");
            const auto classes = predicted_classes(*model_, *test_set_, size_t(first), size_t(count), ws_);
            const std::vector<int32_t> predicted(classes.begin(), classes.end());  // the page reads an Int32Array
            return copy_to_js(predicted.data(), predicted.size());
        });
    }

    // The model as a safetensors file, byte for byte what `sgdx train --save` writes.
    val save_model() {
        return guarded([&] {
            std::vector<uint8_t> bytes = encode_model(*model_, model_metadata(spec_));
            return copy_to_js(bytes.data(), bytes.size());
        });
    }

    // Loads a safetensors file. A file for another architecture (its metadata, or
    // PyTorch's tensor names) switches the page to that model; on any problem the
    // current model is kept and {error} names the file and what is wrong. Returns
    // model_info() plus {switched}.
    val load_model(const std::string& bytes, const std::string& name) {
        return guarded([&] {
            ModelSpec spec;
            auto model = model_from_file(parse_safetensors(bytes_of(bytes), bytes.size(), name), name, &spec);
            if (spec.rows * spec.cols != 784 || spec.classes != 10)
                throw Error(name + ": a " + describe(spec) + " model; this page trains MNIST (28x28 images, 10 classes)");
            try {
                check_fits(*model, spec);
            } catch (const Error& e) {
                throw Error(name + ": " + e.what());
            }
            const bool switched = key(spec) != key(spec_);
            adopt(std::move(model), spec);
            val out = model_info();
            out.set("switched", switched);
            return out;
        });
    }

private:
    // The model's first learning layer's weight (a Linear's (out, in) or a
    // Conv2d's (out, in, k, k)); null if nothing before the output learns so.
    const Parameter* first_weight() const {
        for (const auto& [name, p] : model_->named_parameters())
            if (p->value.dimension() == 2 || p->value.dimension() == 4) return p;
        return nullptr;
    }

    // model_spec_from_text for the page, which has no files: a name or a printout,
    // its errors naming the line (no CLI flag).
    static ModelSpec spec_of_text(const std::string& text) {
        const auto& names = model_names();
        if (std::find(names.begin(), names.end(), text) == names.end() && !core::is_printout({text.data(), text.size()}))
            throw Error("does not begin with 'Sequential(': not a printout of an nn.Sequential");
        return model_spec_from_text(text, "");
    }

    // The page trains MNIST: 784 pixels in, 10 classes out.
    static void check_fits(const Module& model, const ModelSpec& spec) {
        if (model.in_features() != 784 || model.out_features() != 10)
            throw Error(describe(spec) + " takes " + std::to_string(model.in_features()) + " inputs and gives " +
                        std::to_string(model.out_features()) +
                        " outputs; this page trains MNIST: 784 pixels (28x28) in, 10 classes out");
    }

    // What tells two models apart: the architecture, the MLP's widths, the layers.
    static std::string key(const ModelSpec& s) {
        std::string k = s.architecture;
        for (size_t h : s.hidden) k += "," + std::to_string(h);
        if (s.architecture == "sequential") k += "\n" + printout_text(s.layers);
        return k;
    }

    // A new model (and spec) in place of the current one; the optimiser (same
    // settings, empty state) and the loader's epoch start again.
    void adopt(std::unique_ptr<Module> model, const ModelSpec& spec) {
        session_.reset();
        opt_.reset();
        model_ = std::move(model);
        spec_ = spec;
        if (train_loader_) opt_ = page_optimizer(optimizer_, model_->parameters(), base_lr_, momentum_);
    }

    // A run: epochs 1..epochs_ from the model as it is (StepLR's and the per-batch
    // schedules' step count from there), a new one after configure or a divergence.
    TrainingSession& session() {
        if (!session_) {
            since_ = TrainingState();
            since_.epoch = 1;
            since_.rng_state = train_loader_->rng().state();
            since_.rng_inc = train_loader_->rng().increment();
            FitOptions f;
            f.lr_gamma = lr_gamma_;
            f.schedule = schedule_;
            f.resume = &since_;
            session_ = std::make_unique<TrainingSession>(*model_, *opt_, *train_loader_, *valid_loader_, epochs_, f);
        }
        return *session_;
    }

    void check_pixels(size_t n) const {
        if (n != model_->in_features())
            throw Error("predict: the image has " + std::to_string(n) + " pixels, the model takes " +
                        std::to_string(model_->in_features()));
    }

    val activations_of(const uint8_t* pixels) {
        val layers = val::array();
        for (const LayerOutput& out : layer_outputs(*model_, pixels)) {
            val shape = val::array();
            for (size_t d : out.shape) shape.call<void>("push", d);
            val layer = val::object();
            layer.set("name", out.name);
            layer.set("type", out.type);
            layer.set("shape", shape);
            layer.set("data", copy_to_js(out.values.data(), out.values.size()));
            layers.call<void>("push", layer);
        }
        return layers;
    }

    // An image/label IDX pair, checked against the page's model (784 -> 10).
    TensorDataset make_set(const std::string& images, const char* images_name, const std::string& labels,
                           const char* labels_name) const {
        IdxImages img = parse_idx_images(bytes_of(images), images.size(), images_name);
        check_image_pixels(img, model_->in_features(), images_name, "the page's model");
        return labelled_images(std::move(img), parse_idx_labels(bytes_of(labels), labels.size(), labels_name),
                               images_name, labels_name, model_->out_features());
    }

    val probabilities(const uint8_t* pixels) {
        const Prediction p = predict_proba(*model_, pixels);
        val out = val::object();
        val probs = val::array();
        for (double q : p.probs) probs.call<void>("push", q);
        out.set("probs", probs);
        out.set("predicted", int(p.predicted));
        return out;
    }

    std::unique_ptr<Module> model_;
    ModelSpec spec_;  // what model_ is (logistic until set_model or a file says otherwise)
    std::unique_ptr<Optimizer> opt_;
    std::string optimizer_ = "sgd";  // the last configure's settings
    float base_lr_ = 0.5f, momentum_ = 0.f;
    double lr_gamma_ = 1.0;
    LrSchedule schedule_ = LrSchedule::kStep;
    int epochs_ = 1;
    std::unique_ptr<TensorDataset> train_set_, valid_set_, test_set_;
    std::unique_ptr<DataLoader> train_loader_, valid_loader_, test_loader_;
    Workspace ws_;
    std::unique_ptr<TrainingSession> session_;  // after the loaders and optimiser it refers to
    TrainingState since_;                       // where the session starts
};

}  // namespace sgdx::web

EMSCRIPTEN_BINDINGS(sgdx_web) {
    using sgdx::web::Trainer;
    emscripten::function("models", &sgdx::web::models);
    emscripten::function("options", &sgdx::web::options);
    emscripten::function("setThreads", &sgdx::web::set_threads);
    emscripten::function("selectKernels", &sgdx::web::select_kernels);
    emscripten::class_<Trainer>("Trainer")
        .constructor<>()
        .function("loadTraining", &Trainer::load_training)
        .function("loadTest", &Trainer::load_test)
        .function("setModel", &Trainer::set_model)
        .function("modelInfo", &Trainer::model_info)
        .function("reset", &Trainer::reset)
        .function("configure", &Trainer::configure)
        .function("step", &Trainer::step)
        .function("test", &Trainer::test)
        .function("firstLayer", &Trainer::first_layer)
        .function("activations", &Trainer::activations)
        .function("predict", &Trainer::predict)
        .function("testImage", &Trainer::test_image)
        .function("testPredictions", &Trainer::test_predictions)
        .function("saveModel", &Trainer::save_model)
        .function("loadModel", &Trainer::load_model);
}
