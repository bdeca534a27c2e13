// core/printout: PyTorch's nn.Sequential printout parsed into layers and written
// back. The printouts below are torch's own (Debian's python3-torch 1.13), pasted
// verbatim; the comment above each is the expression whose repr() it is. The
// float checks use the C library (strtod, %.*e) and Python's repr as oracles.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "alloc_counter.hpp"
#include "core/printout.hpp"

using namespace sgdx::core;

namespace {

struct Parsed {
    bool ok = false;
    std::vector<LayerSpec> layers;
    std::string why;
};

Parsed parse(const std::string& text, uint32_t cap = 64) {
    Parsed r;
    r.layers.resize(cap + 1);
    char why[1024];
    Text t(why, sizeof why);
    uint32_t n = 12345;
    r.ok = parse_printout({text.data(), text.size()}, r.layers.data(), cap, n, t);
    if (r.ok) CHECK(t.size() == 0);
    else CHECK(n == 0);
    r.layers.resize(r.ok ? n : 0);
    r.why = why;
    return r;
}

// The refusal of `text`, checked to be one line.
std::string refusal(const std::string& text, uint32_t cap = 64) {
    Parsed r = parse(text, cap);
    CHECK_FALSE(r.ok);
    CHECK(r.why.find('\n') == std::string::npos);
    return r.why;
}

// write_printout's text, or "(false)".
std::string written(const std::vector<LayerSpec>& layers, size_t cap = 1 << 16) {
    std::vector<char> buf(cap);
    Text t(buf.data(), cap);
    const bool ok = write_printout(layers.data(), uint32_t(layers.size()), t);
    return ok ? std::string(t.str()) : "(false)";
}

std::string one(const std::string& layer) { return "Sequential(\n  (0): " + layer + "\n)"; }

const char* const kTorchPrintouts[] = {
    // nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    //     nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 10))
    R"(Sequential(
  (0): Unflatten(dim=1, unflattened_size=(1, 28, 28))
  (1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
  (2): ReLU()
  (3): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (4): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))
  (5): ReLU()
  (6): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (7): Flatten(start_dim=1, end_dim=-1)
  (8): Linear(in_features=400, out_features=120, bias=True)
  (9): ReLU()
  (10): Linear(in_features=120, out_features=10, bias=True)
))",
    // nn.Sequential(nn.Linear(784, 128), nn.ReLU(inplace=True), nn.Dropout(0.25), nn.Linear(128, 10, bias=False))
    R"(Sequential(
  (0): Linear(in_features=784, out_features=128, bias=True)
  (1): ReLU(inplace=True)
  (2): Dropout(p=0.25, inplace=False)
  (3): Linear(in_features=128, out_features=10, bias=False)
))",
    // nn.Sequential(nn.Conv2d(3, 8, (3, 5), stride=(2, 1), padding=(1, 2), bias=False), nn.BatchNorm2d(8), nn.ReLU(),
    //     nn.AvgPool2d((2, 3), (1, 2), (1, 1)), nn.Conv2d(8, 4, [1, 1], stride=[2, 2], padding=0, dilation=1, groups=1,
    //     padding_mode='zeros'), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.BatchNorm1d(4, eps=1e-3, momentum=None,
    //     affine=False, track_running_stats=False), nn.Dropout(p=0, inplace=True))
    R"(Sequential(
  (0): Conv2d(3, 8, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), bias=False)
  (1): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
  (2): ReLU()
  (3): AvgPool2d(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1))
  (4): Conv2d(8, 4, kernel_size=(1, 1), stride=(2, 2))
  (5): AdaptiveAvgPool2d(output_size=(1, 1))
  (6): Flatten(start_dim=1, end_dim=-1)
  (7): BatchNorm1d(4, eps=0.001, momentum=None, affine=False, track_running_stats=False)
  (8): Dropout(p=0, inplace=True)
))",
    // nn.Sequential(nn.MaxPool2d((2, 2)), nn.MaxPool2d([3, 3], stride=[1, 1], padding=[1, 1], dilation=[1, 1]),
    //     nn.MaxPool2d(3, stride=(2, 1), padding=1), nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d([1, 1]),
    //     nn.Unflatten(1, [2, 2]), nn.Unflatten(1, torch.Size([4])), nn.Unflatten(1, (10,)))
    R"(Sequential(
  (0): MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0, dilation=1, ceil_mode=False)
  (1): MaxPool2d(kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], dilation=[1, 1], ceil_mode=False)
  (2): MaxPool2d(kernel_size=3, stride=(2, 1), padding=1, dilation=1, ceil_mode=False)
  (3): AdaptiveAvgPool2d(output_size=1)
  (4): AdaptiveAvgPool2d(output_size=[1, 1])
  (5): Unflatten(dim=1, unflattened_size=[2, 2])
  (6): Unflatten(dim=1, unflattened_size=torch.Size([4]))
  (7): Unflatten(dim=1, unflattened_size=(10,))
))",
    // nn.Sequential(nn.BatchNorm2d(8, eps=0, momentum=1), nn.BatchNorm2d(8, eps=1e-05, momentum=0.01),
    //     nn.BatchNorm1d(16, eps=1e-16, momentum=0.9), nn.Dropout(p=1), nn.Dropout(0.1 + 0.2), nn.Dropout(1 / 3),
    //     nn.BatchNorm1d(2, eps=2.5e-06, momentum=0.0001), nn.BatchNorm1d(2, eps=1e15), nn.BatchNorm1d(2, eps=1e16))
    R"(Sequential(
  (0): BatchNorm2d(8, eps=0, momentum=1, affine=True, track_running_stats=True)
  (1): BatchNorm2d(8, eps=1e-05, momentum=0.01, affine=True, track_running_stats=True)
  (2): BatchNorm1d(16, eps=1e-16, momentum=0.9, affine=True, track_running_stats=True)
  (3): Dropout(p=1, inplace=False)
  (4): Dropout(p=0.30000000000000004, inplace=False)
  (5): Dropout(p=0.3333333333333333, inplace=False)
  (6): BatchNorm1d(2, eps=2.5e-06, momentum=0.0001, affine=True, track_running_stats=True)
  (7): BatchNorm1d(2, eps=1000000000000000.0, momentum=0.1, affine=True, track_running_stats=True)
  (8): BatchNorm1d(2, eps=1e+16, momentum=0.1, affine=True, track_running_stats=True)
))",
    // nn.Sequential(OrderedDict([('conv1', nn.Conv2d(1, 8, 5)), ('relu', nn.ReLU()),
    //     ('block', nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU()))), ('head', nn.Linear(3, 10))]))
    R"(Sequential(
  (conv1): Conv2d(1, 8, kernel_size=(5, 5), stride=(1, 1))
  (relu): ReLU()
  (block): Sequential(
    (0): Linear(in_features=2, out_features=3, bias=True)
    (1): Sequential(
      (0): ReLU()
    )
  )
  (head): Linear(in_features=3, out_features=10, bias=True)
))",
};

}  // namespace

TEST_CASE("printout: every torch printout parses and is written back byte for byte") {
    for (const char* text : kTorchPrintouts) {
        CAPTURE(text);
        CHECK(is_printout(span(text)));
        Parsed p = parse(text);
        REQUIRE_MESSAGE(p.ok, p.why);
        CHECK(written(p.layers) == text);
        // print(model) adds a newline; an indented or CRLF copy parses the same
        std::string loose = std::string("  \r\n") + text + "\n";
        Parsed q = parse(loose);
        REQUIRE_MESSAGE(q.ok, q.why);
        CHECK(written(q.layers) == text);
    }
}

TEST_CASE("printout: the fields of the LeNet-like network") {
    Parsed p = parse(kTorchPrintouts[0]);
    REQUIRE(p.ok);
    REQUIRE(p.layers.size() == 11);
    const LayerKind kinds[] = {LayerKind::kUnflatten, LayerKind::kConv2d, LayerKind::kReLU,   LayerKind::kMaxPool2d,
                               LayerKind::kConv2d,    LayerKind::kReLU,   LayerKind::kMaxPool2d, LayerKind::kFlatten,
                               LayerKind::kLinear,    LayerKind::kReLU,   LayerKind::kLinear};
    for (size_t i = 0; i < 11; ++i) {
        CHECK(p.layers[i].kind == kinds[i]);
        CHECK(std::string(p.layers[i].name) == std::to_string(i));
        CHECK(p.layers[i].line == i + 2);
    }
    const LayerSpec& un = p.layers[0];
    CHECK(un.unflatten_rank == 3);
    CHECK((un.unflatten[0] == 1 && un.unflatten[1] == 28 && un.unflatten[2] == 28));
    const LayerSpec& c1 = p.layers[1];
    CHECK((c1.in == 1 && c1.out == 6 && c1.bias));
    CHECK((c1.kernel[0] == 5 && c1.kernel[1] == 5 && c1.stride[0] == 1 && c1.stride[1] == 1));
    CHECK((c1.padding[0] == 2 && c1.padding[1] == 2));
    const LayerSpec& pool = p.layers[3];
    CHECK((pool.kernel[0] == 2 && pool.kernel[1] == 2 && pool.stride[0] == 2 && pool.padding[0] == 0));
    CHECK(pool.kernel_form == Form::kInt);
    CHECK((p.layers[8].in == 400 && p.layers[8].out == 120 && p.layers[8].bias));
    CHECK((p.layers[10].in == 120 && p.layers[10].out == 10));
}

TEST_CASE("printout: non-square convolutions, flags, BatchNorm and Dropout values") {
    Parsed p = parse(kTorchPrintouts[2]);
    REQUIRE(p.ok);
    const LayerSpec& c = p.layers[0];
    CHECK((c.in == 3 && c.out == 8 && !c.bias));
    CHECK((c.kernel[0] == 3 && c.kernel[1] == 5 && c.stride[0] == 2 && c.stride[1] == 1));
    CHECK((c.padding[0] == 1 && c.padding[1] == 2));
    const LayerSpec& bn = p.layers[1];
    CHECK((bn.in == 8 && bn.eps.value == 1e-5 && bn.momentum.value == 0.1 && bn.affine && bn.track_running_stats));
    CHECK_FALSE(bn.cumulative);
    const LayerSpec& avg = p.layers[3];
    CHECK((avg.kernel[0] == 2 && avg.kernel[1] == 3 && avg.stride[0] == 1 && avg.stride[1] == 2));
    CHECK((avg.padding[0] == 1 && avg.padding[1] == 1 && avg.kernel_form == Form::kTuple));
    const LayerSpec& bn1 = p.layers[7];
    CHECK((bn1.kind == LayerKind::kBatchNorm1d && bn1.eps.value == 0.001 && bn1.cumulative));
    CHECK((!bn1.affine && !bn1.track_running_stats));
    CHECK((p.layers[8].p.value == 0 && p.layers[8].p.integer && p.layers[8].inplace));

    Parsed f = parse(kTorchPrintouts[4]);
    REQUIRE(f.ok);
    CHECK((f.layers[0].eps.value == 0 && f.layers[0].eps.integer && f.layers[0].momentum.value == 1));
    CHECK(f.layers[2].eps.value == 1e-16);
    CHECK(f.layers[4].p.value == 0.1 + 0.2);
    CHECK(f.layers[5].p.value == 1.0 / 3);
    CHECK(f.layers[6].momentum.value == 0.0001);
    CHECK(f.layers[8].eps.value == 1e16);
    CHECK_FALSE(f.layers[4].p.integer);
}

TEST_CASE("printout: nested Sequentials are flattened with dotted names") {
    Parsed p = parse(kTorchPrintouts[5]);
    REQUIRE(p.ok);
    REQUIRE(p.layers.size() == 5);
    const char* names[] = {"conv1", "relu", "block.0", "block.1.0", "head"};
    const uint32_t lines[] = {2, 3, 5, 7, 10};
    for (size_t i = 0; i < 5; ++i) {
        CHECK(std::string(p.layers[i].name) == names[i]);
        CHECK(p.layers[i].line == lines[i]);
    }
    CHECK(p.layers[3].kind == LayerKind::kReLU);
}

TEST_CASE("printout: a constructor call's spelling is written as torch prints that call") {
    const std::string calls = R"(Sequential(
  (0): Linear(784, 10)
  (1): MaxPool2d(2)
  (2): Conv2d(1, 16, 3, stride=2, padding=1)
  (3): AvgPool2d(2, ceil_mode=False, count_include_pad=True, divisor_override=None)
  (4): BatchNorm2d(16, 1e-3)
  (5): Dropout()
  (6): MaxPool2d(3, None, 1, 1, False, False)
  (7): ReLU(False)
))";
    // nn.Sequential(nn.Linear(784, 10), nn.MaxPool2d(2), nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.AvgPool2d(2,
    //     ceil_mode=False, count_include_pad=True, divisor_override=None), nn.BatchNorm2d(16, 1e-3), nn.Dropout(),
    //     nn.MaxPool2d(3, None, 1, 1, False, False), nn.ReLU(False))
    const char* torch = R"(Sequential(
  (0): Linear(in_features=784, out_features=10, bias=True)
  (1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (2): Conv2d(1, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
  (3): AvgPool2d(kernel_size=2, stride=2, padding=0)
  (4): BatchNorm2d(16, eps=0.001, momentum=0.1, affine=True, track_running_stats=True)
  (5): Dropout(p=0.5, inplace=False)
  (6): MaxPool2d(kernel_size=3, stride=3, padding=1, dilation=1, ceil_mode=False)
  (7): ReLU()
))";
    Parsed p = parse(calls);
    REQUIRE_MESSAGE(p.ok, p.why);
    CHECK(written(p.layers) == torch);
    // On one line, without the layout, the same.
    Parsed flat = parse("Sequential((0): Linear(784, 10) (1): ReLU(inplace=True),)");
    CHECK_FALSE(flat.ok);  // a comma between layers is not a printout
    Parsed line = parse("Sequential((0): Linear(784, 10,) (1): ReLU(inplace=True))");
    REQUIRE_MESSAGE(line.ok, line.why);
    CHECK(written(line.layers) ==
          "Sequential(\n  (0): Linear(in_features=784, out_features=10, bias=True)\n  (1): ReLU(inplace=True)\n)");
}

TEST_CASE("printout: what sgdx cannot run is refused with the reason") {
    struct Case {
        const char* layer;  // torch's printout of it where torch makes one
        const char* why;
    };
    const Case cases[] = {
        // nn.Conv2d(2, 16, 3, groups=2)
        {"Conv2d(2, 16, kernel_size=(3, 3), stride=(1, 1), groups=2)",
         "line 2: Conv2d(2, 16, kernel_size=(3, 3), stride=(1, 1), groups=2): groups=2: groups other than 1 are not "
         "supported"},
        // nn.Conv2d(1, 16, 3, dilation=2)
        {"Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), dilation=(2, 2))",
         "line 2: Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), dilation=(2...: dilation=(2, 2): dilation o"
         "ther than 1 is not supported"},
        // nn.Conv2d(1, 16, 3, padding='same'), padding='valid', padding_mode='reflect'
        {"Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=same)",
         "line 2: Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=same): padding=same is not supported (give "
         "numbers)"},
        {"Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=valid)",
         "line 2: Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=valid): padding=valid is not supported "
         "(give numbers)"},
        {"Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding_mode=reflect)",
         "line 2: Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding_mod...: padding_mode=reflect is not"
         " supported (only zeros)"},
        {"Conv2d(1, 16, 3, padding='same')",
         "line 2: Conv2d(1, 16, 3, padding='same'): padding='same' is not supported (give numbers)"},
        // nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        {"MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)",
         "line 2: MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ce...: ceil_mode=True is not suppo"
         "rted"},
        {"MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=2, ceil_mode=False)",
         "line 2: MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=2, ce...: dilation=2: dilation other "
         "than 1 is not supported"},
        {"MaxPool2d(2, return_indices=True)", "line 2: MaxPool2d(2, return_indices=True): return_indices=True is not supported"},
        {"MaxPool2d(kernel_size=3, stride=1, padding=2, dilation=1, ceil_mode=False)",
         "line 2: MaxPool2d(kernel_size=3, stride=1, padding=2, dilation=1, ce...: padding=2 is more than half"
         " the kernel size (torch refuses it too)"},
        {"AvgPool2d(2, ceil_mode=True)", "line 2: AvgPool2d(2, ceil_mode=True): ceil_mode=True is not supported"},
        {"AvgPool2d(2, count_include_pad=False)",
         "line 2: AvgPool2d(2, count_include_pad=False): count_include_pad=False is not supported"},
        {"AvgPool2d(2, divisor_override=3)", "line 2: AvgPool2d(2, divisor_override=3): divisor_override=3 is not supported"},
        // nn.AdaptiveAvgPool2d((None, 1)), nn.AdaptiveAvgPool2d(2)
        {"AdaptiveAvgPool2d(output_size=(None, 1))",
         "line 2: AdaptiveAvgPool2d(output_size=(None, 1)): output_size=(None, 1): only output_size=1 is supported"},
        {"AdaptiveAvgPool2d(output_size=2)",
         "line 2: AdaptiveAvgPool2d(output_size=2): output_size=2: only output_size=1 is supported"},
        // nn.Flatten(0, 2)
        {"Flatten(start_dim=0, end_dim=2)",
         "line 2: Flatten(start_dim=0, end_dim=2): only Flatten(start_dim=1, end_dim=-1) is supported"},
        {"Unflatten(dim=2, unflattened_size=(1, 28, 28))",
         "line 2: Unflatten(dim=2, unflattened_size=(1, 28, 28)): dim=2: only dim=1 is supported"},
        {"Unflatten(dim=1, unflattened_size=(-1, 28, 28))",
         "line 2: Unflatten(dim=1, unflattened_size=(-1, 28, 28)): unflattened_size=(-1, 28, 28) is out of range "
         "(sizes 1 to 16777216)"},
        {"Unflatten(dim=1, unflattened_size=(1, 1, 28, 28))",
         "line 2: Unflatten(dim=1, unflattened_size=(1, 1, 28, 28)): unflattened_size=(1, 1, 28, 28) must be a tuple "
         "of 1 to 3 sizes"},
        {"BatchNorm2d(16, eps=1e-05, momentum=1.5, affine=True, track_running_stats=True)",
         "line 2: BatchNorm2d(16, eps=1e-05, momentum=1.5, affine=True, track_...: momentum=1.5 must be betwee"
         "n 0 and 1, or None"},
        {"BatchNorm1d(16, eps=-1e-05)", "line 2: BatchNorm1d(16, eps=-1e-05): eps=-1e-05 must be 0 or more"},
        {"Dropout(p=1.5, inplace=False)", "line 2: Dropout(p=1.5, inplace=False): p=1.5 must be between 0 and 1"},
        {"Dropout(p=True, inplace=False)", "line 2: Dropout(p=True, inplace=False): p=True must be a number"},
        // nn.Tanh(), nn.LSTM(3, 4), nn.Dropout2d(0.5)
        {"Tanh()",
         "line 2: Tanh(): unknown layer 'Tanh' (supported: Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, "
         "AdaptiveAvgPool2d, Flatten, Unflatten, BatchNorm1d, BatchNorm2d, Dropout, Sequential)"},
        {"LSTM(3, 4)",
         "line 2: LSTM(3, 4): unknown layer 'LSTM' (supported: Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, "
         "AdaptiveAvgPool2d, Flatten, Unflatten, BatchNorm1d, BatchNorm2d, Dropout, Sequential)"},
        {"Dropout2d(p=0.5, inplace=False)",
         "line 2: Dropout2d(p=0.5, inplace=False): unknown layer 'Dropout2d' (supported: Linear, Conv2d, ReLU, "
         "MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Unflatten, BatchNorm1d, BatchNorm2d, Dropout, Sequential)"},
        // Sizes and arguments
        {"Linear(in_features=0, out_features=10, bias=True)",
         "line 2: Linear(in_features=0, out_features=10, bias=True): in_features=0 is out of range (1 to 16777216)"},
        {"Linear(in_features=16777217, out_features=10, bias=True)",
         "line 2: Linear(in_features=16777217, out_features=10, bias=True): in_features=16777217 is out of range (1 "
         "to 16777216)"},
        {"Linear(in_features=99999999999999999999999, out_features=10, bias=True)",
         "line 2: Linear(in_features=99999999999999999999999, out_features=10,...: '99999999999999999999999': "
         "number too large"},
        {"Linear(in_features=7.5, out_features=10, bias=True)",
         "line 2: Linear(in_features=7.5, out_features=10, bias=True): in_features=7.5 must be a whole number"},
        {"Linear(in_features=784, out_features=10, bias=1)",
         "line 2: Linear(in_features=784, out_features=10, bias=1): bias=1 must be True or False"},
        {"Linear(in_features=784, bias=True)",
         "line 2: Linear(in_features=784, bias=True): missing argument 'out_features'"},
        {"Linear(784, 10, in_features=3)", "line 2: Linear(784, 10, in_features=3): argument 'in_features' given twice"},
        {"Linear(784, 10, device='cpu')",
         "line 2: Linear(784, 10, device='cpu'): unexpected argument 'device' (Linear takes in_features, "
         "out_features, bias)"},
        {"Linear(784, 10, True, 4)", "line 2: Linear(784, 10, True, 4): Linear takes at most 3 arguments"},
        {"Linear(in_features=784, 10)",
         "line 2: Linear(in_features=784, 10): an argument without a name after one with a name"},
        {"Conv2d(1, 16, kernel_size=(3, 3, 3), stride=(1, 1))",
         "line 2: Conv2d(1, 16, kernel_size=(3, 3, 3), stride=(1, 1)): kernel_size=(3, 3, 3) must be one whole "
         "number or two"},
        {"Conv2d(1, 16, kernel_size=(3, 70000), stride=(1, 1))",
         "line 2: Conv2d(1, 16, kernel_size=(3, 70000), stride=(1, 1)): kernel_size=(3, 70000) is out of range (1 to "
         "65536)"},
        {"Conv2d(1, 16, kernel_size=(3, 3), stride=(0, 1))",
         "line 2: Conv2d(1, 16, kernel_size=(3, 3), stride=(0, 1)): stride=(0, 1) is out of range (1 to 65536)"},
        {"Dropout(p=1e-99, inplace=False)", "line 2: Dropout(p=1e-99, inplace=False): '1e-99': number out of range"},
        {"Dropout(p=0.12345678901234567891, inplace=False)",
         "line 2: Dropout(p=0.12345678901234567891, inplace=False): '0.12345678901234567891': more than 19 "
         "significant digits"},
        {"Unflatten(dim=1, unflattened_size=((1, 2), 3))",
         "line 2: Unflatten(dim=1, unflattened_size=((1, 2), 3)): a tuple inside a tuple"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.layer);
        CHECK(refusal(one(c.layer)) == c.why);
    }
}

TEST_CASE("printout: malformed text is refused with the line and an excerpt") {
    const std::string lenet = kTorchPrintouts[0];
    // Sequential() is torch's printout of an empty one
    CHECK(refusal("Sequential()") == "line 1: Sequential(): an empty Sequential (it has no layers)");
    CHECK(refusal("Sequential(\n  (0): Sequential()\n)") ==
          "line 2: (0): Sequential(): an empty Sequential (it has no layers)");
    CHECK(refusal("") == "line 1: (end of text): expected 'Sequential(' (PyTorch's printout of an nn.Sequential)");
    // found by fuzz_printout (fuzz/regressions/printout/whitespace-between-sequential-and-paren): the parser took
    // what is_printout() does not
    CHECK(refusal("\tSequential\n(\n  (0): ReLU()\n)") ==
          "line 1: Sequential: expected 'Sequential(' (PyTorch's printout of an nn.Sequential)");
    CHECK(refusal("cnn") == "line 1: cnn: expected 'Sequential(' (PyTorch's printout of an nn.Sequential)");
    CHECK(refusal("\x01\xff garbage") ==
          "line 1: ?? garbage: expected 'Sequential(' (PyTorch's printout of an nn.Sequential)");
    // cut short: inside a layer, between layers, before the last ')'
    CHECK(refusal(lenet.substr(0, lenet.find("(1, 28"))) ==
          "line 2: Unflatten(dim=1, unflattened_size=: the text ends inside this layer");
    CHECK(refusal(lenet.substr(0, lenet.find("  (3)"))) ==
          "line 1: Sequential(: the text ends before this Sequential's closing ')'");
    CHECK(refusal(lenet.substr(0, lenet.size() - 1)) ==
          "line 1: Sequential(: the text ends before this Sequential's closing ')'");
    std::string missing = lenet;
    missing.erase(missing.find("bias=True)") + 9, 1);
    CHECK(refusal(missing) == "line 10: Linear(in_features=400, out_features=120, bias=True: missing ')'");
    CHECK(refusal(lenet + ")") == "line 13: ): text after the Sequential's closing ')'");
    CHECK(refusal(one("Linear(784 10)")) == "line 2: 10): expected ',' or ')' after an argument of Linear");
    CHECK(refusal("Sequential(\n  0: ReLU()\n)") ==
          "line 2: 0: ReLU(): expected '(name): Layer(...)' or the Sequential's ')'");
    CHECK(refusal("Sequential(\n  (a-b): ReLU()\n)") ==
          "line 2: (a-b): ReLU(): expected '(name): Layer(...)', a name being letters, digits and _");
    CHECK(refusal("Sequential(\n  (0) ReLU()\n)") == "line 2: (0) ReLU(): expected ':' after the layer's name");
    CHECK(refusal("Sequential(\n  (0): 42\n)") == "line 2: 42: expected a layer, such as Linear(...)");
    CHECK(refusal("Sequential(\n  (0): ReLU\n)") == "line 2: ReLU: expected '(' after ReLU");
    CHECK(refusal(one("Dropout(p='0.5)")) == "line 2: Dropout(p='0.5): a string without its closing quote");
    CHECK(refusal(one("Dropout(p=@)")) == "line 2: @): expected a value");
}

TEST_CASE("printout: duplicate names, deep nesting, long names and the layer cap") {
    CHECK(refusal("Sequential(\n  (0): ReLU()\n  (0): ReLU()\n)") == "line 3: (0): ReLU(): a second layer named '0'");
    CHECK(refusal("Sequential(\n  (0): Sequential(\n    (0): ReLU()\n  )\n  (0): ReLU()\n)") ==
          "line 5: (0): ReLU(): a second layer named '0'");
    CHECK(refusal("Sequential(\n  (a): ReLU()\n  (a): Sequential(\n    (0): ReLU()\n  )\n)") ==
          "line 3: (a): Sequential(: a second layer named 'a'");
    // the same name in different Sequentials is fine
    CHECK(parse("Sequential(\n  (0): Sequential(\n    (0): ReLU()\n  )\n  (1): ReLU()\n)").ok);
    std::string deep = "Sequential(";
    for (int i = 0; i < 8; ++i) deep += "(a): Sequential(";
    CHECK(refusal(deep) == "line 1: (a): Sequential(: Sequentials nested more than 8 deep");  // the 8th
    CHECK(refusal(one("ReLU()").replace(15, 1, std::string(32, 'x'))) ==
          "line 2: (xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx): ReLU(): layer name "
          "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' is longer than 31 characters");
    CHECK(refusal(kTorchPrintouts[0], 10) ==
          "line 12: Linear(in_features=120, out_features=10, bias=True): more than 10 layers");
    CHECK(parse(kTorchPrintouts[0], 11).ok);
    CHECK(refusal(one("ReLU()"), 0) == "line 2: ReLU(): more than 0 layers");
}

TEST_CASE("printout: a huge input gets a short error") {
    const std::string digits(1 << 20, '7');
    const std::string why = refusal(one("Linear(in_features=" + digits + ", out_features=10, bias=True)"));
    CHECK(why.size() < 200);
    CHECK(why.find("line 2: " + ("Linear(in_features=" + digits).substr(0, 60) + "...: ") == 0);
    const std::string line(1 << 20, 'x');
    CHECK(refusal(line).size() < 200);
    CHECK(refusal(one("Tanh(" + line + ")")).size() < 300);
    CHECK(refusal(one("Dropout(p='" + line + "')")).size() < 200);
    // a long line that is fine up to a problem at its end: the excerpt is its start
    std::string padded = one("Linear(in_features=784," + std::string(1 << 20, ' ') + "out_features=10, bias=Nope)");
    const std::string why2 = refusal(padded);
    CHECK(why2.size() < 200);
    CHECK(why2.find("bias=Nope must be True or False") != std::string::npos);
}

TEST_CASE("printout: parsing and writing allocate nothing") {
    const std::string text = kTorchPrintouts[5];
    LayerSpec layers[8];
    char why[256], out[2048];
    Text t(why, sizeof why), o(out, sizeof out);
    uint32_t n = 0;
    const size_t before = sgdx::test::g_allocations.load();
    const bool ok = parse_printout({text.data(), text.size()}, layers, 8, n, t) && write_printout(layers, n, o);
    CHECK(sgdx::test::g_allocations.load() == before);
    CHECK(ok);
    CHECK(std::string(out) == text);
}

TEST_CASE("printout: the writer refuses layers that cannot be one Sequential's") {
    Parsed p = parse(kTorchPrintouts[5]);
    REQUIRE(p.ok);
    CHECK(written(p.layers) == kTorchPrintouts[5]);
    CHECK(written(p.layers, 100) == "(false)");  // does not fit
    CHECK(written({}) == "(false)");
    auto renamed = [&](size_t i, const char* name) {
        std::vector<LayerSpec> l = p.layers;
        std::snprintf(l[i].name, sizeof l[i].name, "%s", name);
        return written(l);
    };
    CHECK(renamed(1, "conv1") == "(false)");      // twice
    CHECK(renamed(4, "block") == "(false)");      // a layer and a Sequential
    CHECK(renamed(0, "block.5") == "(false)");    // block would open twice, around relu
    CHECK(renamed(4, "block.1.1") != "(false)");  // joins the Sequential block.1 it follows
    CHECK(renamed(1, "a b") == "(false)");
    CHECK(renamed(1, "a..b") == "(false)");
    CHECK(renamed(1, "") == "(false)");
    CHECK(renamed(1, "a.b.c.d.e.f.g.h.i") == "(false)");  // nested deeper than a printout may be
    std::vector<LayerSpec> l = p.layers;
    l[2].kind = LayerKind::kCount;
    CHECK(written(l) == "(false)");
    Parsed bn = parse(one("BatchNorm1d(4)"));
    REQUIRE(bn.ok);
    bn.layers[0].eps.value = std::nan("");
    CHECK(written(bn.layers) == "(false)");
    bn.layers[0].eps = Real{0.5, true};  // not a whole number
    CHECK(written(bn.layers) == "(false)");
    bn.layers[0].eps = Real{3, true};
    CHECK(written(bn.layers).find("eps=3, ") != std::string::npos);
}

TEST_CASE("printout: floats are written as Python's repr writes them") {
    struct Case {
        uint64_t bits;
        const char* repr;
    };
    // /usr/bin/python3: '{0x%016xull, "%r"},' % (struct.unpack('<Q', struct.pack('<d', v))[0], v) for v in [...]
    const Case cases[] = {
        {0x3ee4f8b588e368f1ull, "1e-05"}, {0x3fb999999999999aull, "0.1"}, {0x3f50624dd2f1a9fcull, "0.001"},
        {0x3fe0000000000000ull, "0.5"}, {0x3fd0000000000000ull, "0.25"}, {0x3feccccccccccccdull, "0.9"},
        {0x3f847ae147ae147bull, "0.01"}, {0x3f1a36e2eb1c432dull, "0.0001"}, {0x3f689374bc6a7efaull, "0.003"},
        {0x3fd3333333333334ull, "0.30000000000000004"}, {0x3fd5555555555555ull, "0.3333333333333333"},
        {0x3fe5555555555555ull, "0.6666666666666666"}, {0x3eb0000000000000ull, "9.5367431640625e-07"},
        {0x4630000000000000ull, "1.2676506002282294e+30"}, {0x3380000000000000ull, "1.2446030555722283e-60"},
        {0x4480f0cf064dd592ull, "1e+22"}, {0x44b52d02c7e14af6ull, "1e+23"}, {0x3f0a36e2eb1c432dull, "5e-05"},
        {0x437b69b4ba630f35ull, "1.2345678901234568e+17"}, {0x430c6bf526340000ull, "1000000000000000.0"},
        {0x4341c37937e08000ull, "1e+16"}, {0x4c97a5bfcfa780e1ull, "9.5e+60"}, {0x3383488380017c9dull, "1.5e-60"},
        {0x3fd3333333333333ull, "0.3"}, {0x3379b604aaaca626ull, "1e-60"}, {0x405edd2f1a9fbe77ull, "123.456"},
        {0x4059000000000000ull, "100.0"}, {0x3ff0000000000000ull, "1.0"}, {0x4000000000000000ull, "2.0"},
        {0x3fefffffffffffffull, "0.9999999999999999"}, {0x4011666666666666ull, "4.35"},
        {0x3f201f31f46ed246ull, "0.000123"}, {0x3bb03a4eca3e5303ull, "3.436362848809433e-21"},
        {0x3768e7998f024555ull, "8.934118262688525e-42"}, {0x43c411457607cefbull, "2.892026657204205e+18"},
        {0x3578f34cde6cd33eull, "4.167907898334707e-51"}, {0x40ecbfd7b38eb503ull, "58878.740668633975"},
        {0x3cb7b1fa620f498bull, "3.288373294785285e-16"}, {0x351e90674f565d72ull, "7.977596167589374e-53"},
        {0x403842024003e77dull, "24.25784683318442"}, {0x349c6a7d47266f77ull, "2.897232542012811e-55"},
        {0x3e65901728eb9d9full, "4.0163944272683534e-08"}, {0x35689a518af7ee1dull, "2.0549223011709415e-51"},
        {0x35ed292350f21b0eull, "6.235174149721982e-49"}, {0x0000000000000000ull, "0.0"},
        {0x8000000000000000ull, "-0.0"}, {0xbfb999999999999aull, "-0.1"},
    };
    for (const Case& c : cases) {
        double x;
        std::memcpy(&x, &c.bits, 8);
        char buf[64];
        Text t(buf, sizeof buf);
        CAPTURE(c.repr);
        REQUIRE(write_real(x, t));
        CHECK(std::string(buf) == c.repr);
        double back = 1;
        REQUIRE(read_real(span(c.repr), back));
        CHECK(std::memcmp(&back, &x, 8) == 0);
    }
    char buf[64];
    Text t(buf, sizeof buf);
    CHECK_FALSE(write_real(std::nan(""), t));
    CHECK_FALSE(write_real(HUGE_VAL, t));
    CHECK_FALSE(write_real(1e-70, t));  // outside what read_real reads
    CHECK_FALSE(write_real(1e70, t));
}

TEST_CASE("printout: read_real rounds as strtod does") {
    std::mt19937_64 rng(12345);
    const char* fixed[] = {"9007199254740993.0", "9007199254740995.0", "9007199254740993e10", "1e-60",
                           "9.999999999999999999e60", "4.9406564584124654e-60", "2.2250738585072014e-58",
                           "1.7976931348623157e60", "0.1", "1e23", "8.533e+37", "123456789012345678.9",
                           "0.000000000000000000000000000001", "7.2057594037927933e16", "1.0000000000000002"};
    auto check = [](const std::string& s) {
        double mine = -1;
        CAPTURE(s);
        REQUIRE(read_real({s.data(), s.size()}, mine));
        const double libc = std::strtod(s.c_str(), nullptr);
        CHECK(std::memcmp(&mine, &libc, 8) == 0);
    };
    for (const char* s : fixed) check(s);
    for (int i = 0; i < 20000; ++i) {
        const int digits = 1 + int(rng() % 19);
        std::string s;
        for (int d = 0; d < digits; ++d) s += char('0' + (d == 0 ? 1 + rng() % 9 : rng() % 10));
        const int point = int(rng() % (digits + 1));
        s.insert(size_t(point), ".");
        const int exp = int(rng() % 96) - 55;  // magnitudes within 1e-57 .. 1e58
        s += "e" + std::to_string(exp);
        check(s);
    }
    double v;
    for (const char* bad : {"", "-", "1e", "1e+", "abc", "1.0x", "1e-61", "1e62", "01234567890123456789012.5", "inf", "nan"})
        CHECK_FALSE(read_real(span(bad), v));
    CHECK(read_real(span("-0.0"), v));
    CHECK(std::signbit(v));
    CHECK(read_real(span("42"), v));
    CHECK(v == 42);
}

TEST_CASE("printout: write_real's digits are the fewest that read back") {
    std::mt19937_64 rng(777);
    for (int i = 0; i < 20000; ++i) {
        // random bits with exponents within 1e-59 .. 1e59
        const uint64_t exp = 1023 - 195 + rng() % 390, bits = (exp << 52) | (rng() & ((uint64_t(1) << 52) - 1));
        double x;
        std::memcpy(&x, &bits, 8);
        char buf[64];
        Text t(buf, sizeof buf);
        CAPTURE(bits);
        REQUIRE(write_real(x, t));
        CAPTURE(buf);
        const double back = std::strtod(buf, nullptr);
        CHECK(std::memcmp(&back, &x, 8) == 0);
        // no fewer significant digits would do (the C library's nearest decimal of each length)
        size_t sig = 0;
        bool leading = true;
        for (const char* c = buf; *c && *c != 'e'; ++c)
            if (*c >= '1' && *c <= '9') sig++, leading = false;
            else if (*c == '0' && !leading) sig++;
        // trailing zeros of a positional form ("100.0") are not significant
        std::string b(buf);
        if (b.find('e') == std::string::npos) {
            size_t end = b.size();
            while (end > 0 && (b[end - 1] == '0' || b[end - 1] == '.')) {
                if (b[end - 1] == '0') --sig;
                --end;
            }
        }
        if (sig > 1) {
            char shorter[64];
            std::snprintf(shorter, sizeof shorter, "%.*e", int(sig) - 2, x);
            const double s = std::strtod(shorter, nullptr);
            CHECK(std::memcmp(&s, &x, 8) != 0);
        }
    }
}
