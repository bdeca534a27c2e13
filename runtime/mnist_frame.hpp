#pragma once
// MNIST's preprocessing of a digit, as the page's drawing pad applies it
// (web/drawing.js mnistFrame, pinned to this by tests/test_mnist_frame.cpp): the
// ink's bounding box scaled so its longer side is 20 px (area averaging, giving
// MNIST's anti-aliased grey edges), placed in a 28x28 frame with its centre of mass
// at the centre. A digit drawn small, off-centre or on a large canvas then looks
// like the images the model was trained on.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sgdx {

constexpr size_t kMnistSide = 28;  // the frame
constexpr size_t kMnistBox = 20;   // the digit's longer side inside it

// grey: (height, width) white-on-black pixels -> (28, 28). Ink is any pixel > 0;
// an image with none gives an empty (all-zero) frame.
std::vector<uint8_t> mnist_frame(const uint8_t* grey, size_t width, size_t height);

}  // namespace sgdx
