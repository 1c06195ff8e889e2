// Tests of TensorChunk encoding, decoding, validation and message planning.
#include "common/tensor_chunk.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::common {
namespace {

using ::gcprune::testing::StatusIsWithMessage;
using ::gcprune::v1::TensorChunk;
using ::testing::ElementsAre;

const std::vector<float> kValues = {0.0f, -1.5f, 3.25f, 1e-3f, -65504.0f};

TEST(TensorChunkTest, RoundTripsEveryEncoding) {
  struct Case {
    gcprune::v1::ValueEncoding encoding;
    bool as_bytes;
    float tolerance;
  };
  const Case cases[] = {
      {gcprune::v1::VALUE_ENCODING_FLOAT32, false, 0.0f},
      {gcprune::v1::VALUE_ENCODING_FLOAT32, true, 0.0f},
      {gcprune::v1::VALUE_ENCODING_UNSPECIFIED, false, 0.0f},
      {gcprune::v1::VALUE_ENCODING_BFLOAT16, true, 1.0f / 128},
      {gcprune::v1::VALUE_ENCODING_FLOAT16, true, 1.0f / 1024},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(gcprune::v1::ValueEncoding_Name(c.encoding) + (c.as_bytes ? " bytes" : " values"));
    TensorChunk chunk;
    ASSERT_OK(EncodeChunk(3, 16, kValues, c.encoding, c.as_bytes, &chunk));
    EXPECT_EQ(chunk.tensor_index(), 3u);
    EXPECT_EQ(chunk.offset(), 16);
    ASSERT_OK_AND_ASSIGN(int64_t count, ChunkElementCount(chunk));
    EXPECT_EQ(count, static_cast<int64_t>(kValues.size()));
    std::vector<float> decoded = {42.0f};
    ASSERT_OK(DecodeChunkValues(chunk, &decoded));
    ASSERT_EQ(decoded.size(), kValues.size());
    for (size_t i = 0; i < kValues.size(); ++i) {
      EXPECT_NEAR(decoded[i], kValues[i], std::abs(kValues[i]) * c.tolerance) << i;
    }
  }
}

TEST(TensorChunkTest, DecodesLittleEndianBytes) {
  TensorChunk chunk;
  chunk.set_encoding(gcprune::v1::VALUE_ENCODING_FLOAT32);
  chunk.set_data(std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8));  // 1.0f, -2.0f
  std::vector<float> decoded;
  ASSERT_OK(DecodeChunkValues(chunk, &decoded));
  EXPECT_THAT(decoded, ElementsAre(1.0f, -2.0f));
  chunk.set_encoding(gcprune::v1::VALUE_ENCODING_BFLOAT16);
  chunk.set_data(std::string("\x80\x3f\x00\xc0", 4));
  ASSERT_OK(DecodeChunkValues(chunk, &decoded));
  EXPECT_THAT(decoded, ElementsAre(1.0f, -2.0f));
  chunk.set_encoding(gcprune::v1::VALUE_ENCODING_FLOAT16);
  chunk.set_data(std::string("\x00\x3c\x00\xc0", 4));
  ASSERT_OK(DecodeChunkValues(chunk, &decoded));
  EXPECT_THAT(decoded, ElementsAre(1.0f, -2.0f));
}

TEST(TensorChunkTest, RejectsMalformedChunks) {
  struct Case {
    const char* what;
    TensorChunk chunk;
    const char* message;
  };
  std::vector<Case> cases;
  cases.push_back({"empty", TensorChunk(), "neither values nor data"});
  {
    TensorChunk both;
    both.add_values(1.0f);
    both.set_data(std::string(4, '\0'));
    cases.push_back({"both", both, "both values and data"});
  }
  {
    TensorChunk half_values;
    half_values.set_encoding(gcprune::v1::VALUE_ENCODING_BFLOAT16);
    half_values.add_values(1.0f);
    cases.push_back({"values with bfloat16", half_values, "only for FLOAT32"});
  }
  {
    TensorChunk odd;
    odd.set_encoding(gcprune::v1::VALUE_ENCODING_FLOAT16);
    odd.set_data(std::string(3, '\0'));
    cases.push_back({"odd bytes", odd, "3 bytes is not a multiple of 2"});
  }
  {
    TensorChunk unknown;
    unknown.set_encoding(static_cast<gcprune::v1::ValueEncoding>(9));
    unknown.set_data(std::string(4, '\0'));
    cases.push_back({"unknown encoding", unknown, "unknown value 9"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(ChunkElementCount(c.chunk), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
    std::vector<float> out;
    EXPECT_THAT(DecodeChunkValues(c.chunk, &out), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  TensorChunk chunk;
  EXPECT_THAT(EncodeChunk(0, 0, {}, gcprune::v1::VALUE_ENCODING_FLOAT32, false, &chunk),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "no values"));
  EXPECT_THAT(EncodeChunk(0, -1, kValues, gcprune::v1::VALUE_ENCODING_FLOAT32, false, &chunk),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "offset"));
}

TEST(TensorChunkTest, PlansMessagesCoveringEveryElementOnce) {
  ASSERT_OK_AND_ASSIGN(auto messages, PlanChunkMessages({{0, 500}, {2, 25000}, {4, 20}, {6, 10}}, 10000));
  ASSERT_EQ(messages.size(), 3u);
  ASSERT_EQ(messages[0].size(), 2u);
  EXPECT_EQ(messages[0][0].tensor_index, 0u);
  EXPECT_EQ(messages[0][0].count, 500);
  EXPECT_EQ(messages[0][1].tensor_index, 2u);
  EXPECT_EQ(messages[0][1].count, 9500);
  ASSERT_EQ(messages[1].size(), 1u);
  EXPECT_EQ(messages[1][0].offset, 9500);
  EXPECT_EQ(messages[1][0].count, 10000);
  ASSERT_EQ(messages[2].size(), 3u);
  EXPECT_EQ(messages[2][0].offset, 19500);
  EXPECT_EQ(messages[2][0].count, 5500);
  EXPECT_EQ(messages[2][2].tensor_index, 6u);
  int64_t total = 0;
  for (const auto& message : messages) {
    int64_t in_message = 0;
    for (const ChunkSpan& span : message) in_message += span.count;
    EXPECT_LE(in_message, 10000);
    total += in_message;
  }
  EXPECT_EQ(total, 500 + 25000 + 20 + 10);
  EXPECT_THAT(PlanChunkMessages({{0, 5}}, 0), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "max_elements"));
  EXPECT_THAT(PlanChunkMessages({{7, 0}}, 5), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "tensor 7"));
}

}  // namespace
}  // namespace gcprune::common
