#pragma once
// The tutorial's Mnist_CNN, child by child as its forward reads:
//
//   class Mnist_CNN(nn.Module):
//       def __init__(self):
//           self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1)
//           self.conv2 = nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1)
//           self.conv3 = nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1)
//       def forward(self, xb):
//           xb = xb.view(-1, 1, 28, 28)
//           xb = F.relu(self.conv1(xb))
//           xb = F.relu(self.conv2(xb))
//           xb = F.relu(self.conv3(xb))
//           xb = F.avg_pool2d(xb, 4)
//           return xb.view(-1, xb.size(1))
//
// Only conv1..conv3 hold parameters, so its state_dict is PyTorch's
// (conv1.weight, conv1.bias, ...). Sized from the data: 28x28 images end in a
// 4x4 plane per class before the pooling.
#include "../runtime/activation.hpp"
#include "../runtime/conv2d.hpp"
#include "../runtime/pooling.hpp"
#include "../runtime/reshape.hpp"
#include "../runtime/sequential.hpp"

namespace sgdx {

class MnistCNN : public Sequential {
public:
    explicit MnistCNN(size_t rows = 28, size_t cols = 28, size_t classes = 10, uint64_t seed = 0) {
        Rng rng(seed);
        add("view", std::make_unique<View>(Shape{1, rows, cols}));
        add("conv1", std::make_unique<Conv2d>(1, 16, 3, 2, 1, rng));
        add("relu1", std::make_unique<ReLU>());
        add("conv2", std::make_unique<Conv2d>(16, 16, 3, 2, 1, rng));
        add("relu2", std::make_unique<ReLU>());
        add("conv3", std::make_unique<Conv2d>(16, classes, 3, 2, 1, rng));
        add("relu3", std::make_unique<ReLU>());
        add("avg_pool2d", std::make_unique<AvgPool2d>(4));
        add("view_out", std::make_unique<Flatten>());
        build({rows * cols});
    }
    std::string type_name() const override { return "Mnist_CNN"; }
    std::unique_ptr<Module> clone() const override {
        const Shape& image = (*this)[0].output_shape();  // the view's (1, rows, cols)
        return std::make_unique<MnistCNN>(image[1], image[2], out_features());
    }
};

}  // namespace sgdx
