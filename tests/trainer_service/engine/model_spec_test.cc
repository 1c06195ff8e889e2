// Tests of model specs: the text grammar, error messages naming the token, formatting and the presets.
#include "trainer_service/engine/model_spec.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

TEST(ModelSpecTest, ParsesEveryLayerKindAndOption) {
  ASSERT_OK_AND_ASSIGN(std::vector<LayerSpec> layers,
                       ParseLayers(" conv:8:3:stride=2:pad=1:nobias , relu,maxpool : 3 : stride=2 : pad=1,"
                                   "flatten,linear:10:nobias,linear:4"));
  ASSERT_EQ(layers.size(), 6u);
  EXPECT_EQ(layers[0].kind, LayerKind::kConv2d);
  EXPECT_EQ(layers[0].out, 8);
  EXPECT_EQ(layers[0].kernel, 3);
  EXPECT_EQ(layers[0].stride, 2);
  EXPECT_EQ(layers[0].padding, 1);
  EXPECT_FALSE(layers[0].bias);
  EXPECT_EQ(layers[1].kind, LayerKind::kRelu);
  EXPECT_EQ(layers[2].kind, LayerKind::kMaxPool2d);
  EXPECT_EQ(layers[2].kernel, 3);
  EXPECT_EQ(layers[2].stride, 2);
  EXPECT_EQ(layers[2].padding, 1);
  EXPECT_EQ(layers[3].kind, LayerKind::kFlatten);
  EXPECT_EQ(layers[4].kind, LayerKind::kLinear);
  EXPECT_FALSE(layers[4].bias);
  EXPECT_TRUE(layers[5].bias);
  // Defaults: conv stride 1; maxpool stride 0 = kernel.
  ASSERT_OK_AND_ASSIGN(layers, ParseLayers("conv:20:5,maxpool:2"));
  EXPECT_EQ(layers[0].stride, 1);
  EXPECT_TRUE(layers[0].bias);
  EXPECT_EQ(layers[1].stride, 0);
}

TEST(ModelSpecTest, FormatParsesBackToTheSameLayers) {
  const char* text = "conv:8:3:stride=2:pad=1:nobias,relu,maxpool:3:stride=2:pad=1,flatten,linear:10:nobias,linear:4";
  ASSERT_OK_AND_ASSIGN(std::vector<LayerSpec> layers, ParseLayers(text));
  EXPECT_EQ(FormatLayers(layers), text);
  ASSERT_OK_AND_ASSIGN(std::vector<LayerSpec> again, ParseLayers(FormatLayers(layers)));
  EXPECT_EQ(again, layers);
}

TEST(ModelSpecTest, ErrorsNameTheToken) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "layer 1 '': empty layer"},
      {"relu,,relu", "layer 2 '': empty layer"},
      {"conv:20", "layer 1 'conv:20': missing kernel size"},
      {"relu,conv:x:5", "layer 2 'conv:x:5': output channels must be an integer"},
      {"conv:20:0", "layer 1 'conv:20:0': kernel size must be an integer in [1, "},
      {"conv:20:5:stride=0", "stride must be an integer >= 1, got '0'"},
      {"conv:20:5:pad=-1", "pad must be an integer >= 0, got '-1'"},
      {"conv:20:5:dilation=2", "layer 1 'conv:20:5:dilation=2': unknown option 'dilation=2'"},
      {"linear", "layer 1 'linear': missing output features"},
      {"linear:10:stride=2", "unknown option 'stride=2'"},
      {"maxpool:2:nobias", "unknown option 'nobias'"},
      {"relu:1", "'relu' takes no arguments"},
      {"relu,softmax", "layer 2 'softmax': unknown layer kind 'softmax'"},
      {"linear:99999999999", "output features must be an integer in [1, 1048576]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_THAT(ParseLayers(c.text), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(ModelSpecTest, ParsesShapes) {
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> shape, ParseShape("1x28x28"));
  EXPECT_EQ(shape, (std::vector<int64_t>{1, 28, 28}));
  ASSERT_OK_AND_ASSIGN(shape, ParseShape(" 784 "));
  EXPECT_EQ(shape, (std::vector<int64_t>{784}));
  EXPECT_THAT(ParseShape(""), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "input shape: empty"));
  EXPECT_THAT(ParseShape("1x0x28"), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "dimension '0'"));
  EXPECT_THAT(ParseShape("1xax28"), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "dimension 'a'"));
  EXPECT_THAT(ParseShape("28x28"), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "got 2 dimensions"));
}

TEST(ModelSpecTest, PresetsAreMethodSection6) {
  ASSERT_OK_AND_ASSIGN(ModelSpec mlp, PresetModelSpec("mlp"));
  EXPECT_EQ(mlp.name, "mlp");
  EXPECT_EQ(mlp.input_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(FormatLayers(mlp.layers), "flatten,linear:40:nobias,relu,linear:20:nobias,relu,linear:10:nobias");
  ASSERT_OK_AND_ASSIGN(ModelSpec lenet, PresetModelSpec("lenet5"));
  EXPECT_EQ(FormatLayers(lenet.layers),
            "conv:20:5,relu,maxpool:2,conv:50:5,relu,maxpool:2,flatten,linear:500,relu,linear:10");
  EXPECT_THAT(PresetModelSpec("resnet18"),
              StatusIsWithMessage(absl::StatusCode::kNotFound, "unknown model preset 'resnet18' (known: mlp, lenet5)"));
}

TEST(ModelSpecTest, FlagAcceptsPresetOrLayerList) {
  ASSERT_OK_AND_ASSIGN(ModelSpec spec, ModelSpecFromFlag("lenet5", "ignored"));
  EXPECT_EQ(spec.name, "lenet5");
  ASSERT_OK_AND_ASSIGN(spec, ModelSpecFromFlag("flatten,linear:10", "1x8x8"));
  EXPECT_EQ(spec.name, "custom");
  EXPECT_EQ(spec.input_shape, (std::vector<int64_t>{1, 8, 8}));
  EXPECT_EQ(spec.layers.size(), 2u);
  EXPECT_THAT(ModelSpecFromFlag("flatten,linear:10", "8x8"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ModelSpecFromFlag("lenet", "1x28x28"),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument,
                                  "model 'lenet' is neither a preset (mlp, lenet5) nor a layer list"));
}

}  // namespace
}  // namespace gcprune::trainer
