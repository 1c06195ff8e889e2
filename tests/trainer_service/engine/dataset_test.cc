// Tests of the data set loaders (IDX and CIFAR-10 files written here, raw and gzipped, intact and
// corrupted; the installed Fashion-MNIST), the portable shuffle and the batch iterator.
#include "trainer_service/engine/dataset.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "trainer_service/engine/splitmix64.h"

namespace gcprune::trainer {
namespace {

namespace fs = std::filesystem;
using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

// A fresh directory under the test's temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::path(::testing::TempDir()) / "gcprune_dataset_XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  std::string Path(const std::string& name) const { return (fs::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// One gzip member holding `raw`.
std::string Gzip(const std::string& raw) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, raw.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string BigEndian(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
}

uint8_t Pixel(int64_t i) { return static_cast<uint8_t>((i * 37 + 11) % 256); }

// An IDX image file of n images of h×w with pixel k = Pixel(k).
std::string IdxImages(uint32_t n, uint32_t h, uint32_t w, uint32_t magic = 0x00000803) {
  std::string bytes = BigEndian(magic) + BigEndian(n) + BigEndian(h) + BigEndian(w);
  for (int64_t k = 0; k < int64_t{n} * h * w; ++k) bytes.push_back(static_cast<char>(Pixel(k)));
  return bytes;
}

std::string IdxLabels(const std::vector<int>& labels) {
  std::string bytes = BigEndian(0x00000801) + BigEndian(static_cast<uint32_t>(labels.size()));
  for (int l : labels) bytes.push_back(static_cast<char>(l));
  return bytes;
}

float Normalised(uint8_t v, float mean, float stddev) { return (static_cast<float>(v) / 255.0f - mean) / stddev; }

constexpr float kMean = 0.2860f, kStd = 0.3530f;

TEST(LoadIdxTest, ReadsRawAndGzippedFiles) {
  TempDir dir;
  const std::string images = IdxImages(5, 3, 4);
  const std::string labels = IdxLabels({0, 1, 2, 3, 9});
  WriteFile(dir.Path("images"), images);
  WriteFile(dir.Path("labels"), labels);
  WriteFile(dir.Path("images.gz"), Gzip(images));
  WriteFile(dir.Path("labels.gz"), Gzip(labels));
  for (const auto& [image_file, label_file] : std::vector<std::pair<std::string, std::string>>{
           {"images", "labels"}, {"images.gz", "labels.gz"}, {"images", "labels.gz"}}) {
    SCOPED_TRACE(image_file + " " + label_file);
    ASSERT_OK_AND_ASSIGN(Dataset data, LoadIdx(dir.Path(image_file), dir.Path(label_file), kMean, kStd));
    EXPECT_EQ(data.size, 5);
    EXPECT_EQ(data.channels, 1);
    EXPECT_EQ(data.height, 3);
    EXPECT_EQ(data.width, 4);
    EXPECT_EQ(data.num_classes, 10);
    EXPECT_EQ(data.labels, (std::vector<int32_t>{0, 1, 2, 3, 9}));
    ASSERT_EQ(data.images.size(), 60u);
    for (int64_t k = 0; k < 60; ++k) ASSERT_EQ(data.images[k], Normalised(Pixel(k), kMean, kStd)) << k;
  }
}

TEST(LoadIdxTest, ReadsConcatenatedGzipMembers) {
  TempDir dir;
  const std::string images = IdxImages(5, 3, 4);
  WriteFile(dir.Path("images.gz"), Gzip(images.substr(0, 30)) + Gzip(images.substr(30)));
  WriteFile(dir.Path("labels.gz"), Gzip(IdxLabels({0, 1, 2, 3, 4})));
  ASSERT_OK_AND_ASSIGN(Dataset data, LoadIdx(dir.Path("images.gz"), dir.Path("labels.gz"), kMean, kStd));
  EXPECT_EQ(data.size, 5);
  EXPECT_EQ(data.images.back(), Normalised(Pixel(59), kMean, kStd));
}

// A pipe has no size to check against or reserve by: the data alone decides.
TEST(LoadIdxTest, ReadsFromPipes) {
  TempDir dir;
  const std::string images = IdxImages(5, 3, 4);
  const std::string labels = IdxLabels({0, 1, 2, 3, 4});
  ASSERT_EQ(::mkfifo(dir.Path("images").c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo(dir.Path("labels").c_str(), 0600), 0);
  // LoadIdx opens the images, then the labels: feed them in that order. The writer owns copies, so
  // if a failure leaves it blocked on a pipe nobody opens, it can be detached safely.
  std::thread writer([images_path = dir.Path("images"), labels_path = dir.Path("labels"),
                      gz = Gzip(images), labels] {
    WriteFile(images_path, gz);
    WriteFile(labels_path, labels);
  });
  const absl::StatusOr<Dataset> data = LoadIdx(dir.Path("images"), dir.Path("labels"), kMean, kStd);
  if (!data.ok()) writer.detach();
  ASSERT_OK(data);
  writer.join();
  EXPECT_EQ(data->size, 5);
  EXPECT_EQ(data->images[59], Normalised(Pixel(59), kMean, kStd));
}

TEST(LoadIdxTest, SubsetKeepsTheFirstExamples) {
  TempDir dir;
  WriteFile(dir.Path("images"), IdxImages(5, 3, 4));
  WriteFile(dir.Path("labels"), IdxLabels({4, 3, 2, 1, 0}));
  LoadOptions options;
  options.subset = 2;
  ASSERT_OK_AND_ASSIGN(Dataset two, LoadIdx(dir.Path("images"), dir.Path("labels"), kMean, kStd, options));
  EXPECT_EQ(two.size, 2);
  EXPECT_EQ(two.labels, (std::vector<int32_t>{4, 3}));
  EXPECT_EQ(two.images.size(), 24u);
  options.subset = 100;
  ASSERT_OK_AND_ASSIGN(Dataset all, LoadIdx(dir.Path("images"), dir.Path("labels"), kMean, kStd, options));
  EXPECT_EQ(all.size, 5);
}

TEST(LoadIdxTest, SubsetStillChecksTheWholeFile) {
  TempDir dir;
  const std::string images = IdxImages(5, 3, 4);
  WriteFile(dir.Path("images.gz"), Gzip(images.substr(0, images.size() - 1)));
  WriteFile(dir.Path("labels"), IdxLabels({0, 1, 2, 3, 4}));
  LoadOptions options;
  options.subset = 1;
  EXPECT_THAT(LoadIdx(dir.Path("images.gz"), dir.Path("labels"), kMean, kStd, options),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(LoadIdxTest, RejectsBadArguments) {
  TempDir dir;
  WriteFile(dir.Path("images"), IdxImages(5, 3, 4));
  WriteFile(dir.Path("labels"), IdxLabels({0, 1, 2, 3, 4}));
  LoadOptions negative_subset;
  negative_subset.subset = -1;
  LoadOptions no_classes;
  no_classes.num_classes = 0;
  LoadOptions too_many_classes;
  too_many_classes.num_classes = 300;
  struct Case {
    const char* what;
    float mean, stddev;
    LoadOptions options;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"zero std", kMean, 0.0f, {}, "stddev 0"},
      {"nan mean", std::numeric_limits<float>::quiet_NaN(), kStd, {}, "mean nan"},
      {"negative subset", kMean, kStd, negative_subset, "LoadOptions.subset: -1"},
      {"no classes", kMean, kStd, no_classes, "LoadOptions.num_classes: 0"},
      {"too many classes", kMean, kStd, too_many_classes, "LoadOptions.num_classes: 300"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(LoadIdx(dir.Path("images"), dir.Path("labels"), c.mean, c.stddev, c.options),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(LoadIdxTest, NumClassesBoundsTheLabels) {
  TempDir dir;
  WriteFile(dir.Path("images"), IdxImages(5, 3, 4));
  WriteFile(dir.Path("labels"), IdxLabels({0, 1, 2, 1, 0}));
  LoadOptions options;
  options.num_classes = 3;
  ASSERT_OK_AND_ASSIGN(Dataset data, LoadIdx(dir.Path("images"), dir.Path("labels"), kMean, kStd, options));
  EXPECT_EQ(data.num_classes, 3);
  options.num_classes = 2;
  EXPECT_THAT(LoadIdx(dir.Path("images"), dir.Path("labels"), kMean, kStd, options),
              StatusIsWithMessage(absl::StatusCode::kDataLoss, "label 2 of example 2 is not in [0, 2)"));
}

// Every way an IDX pair can be broken, with its status code, the message and the file it must name.
TEST(LoadIdxTest, ReportsEachCorruptionWithItsCodeAndFile) {
  const std::string images = IdxImages(5, 3, 4);
  const std::string labels = IdxLabels({0, 1, 2, 3, 9});
  std::string bad_crc = Gzip(images);
  bad_crc[bad_crc.size() - 8] ^= 0x55;
  std::string bad_block = Gzip(images);
  bad_block[10] = 0x07;  // first deflate block: final, reserved type 11
  std::string bad_label_crc = Gzip(labels);
  bad_label_crc[bad_label_crc.size() - 6] ^= 0x55;
  const std::string kMissing = "\x01missing";
  const std::string kDirectory = "\x01directory";
  enum Which { kImages, kLabels, kBoth };
  struct Case {
    const char* what;
    std::string images, labels;
    absl::StatusCode code;
    const char* message;
    Which names;
  };
  const std::vector<Case> cases = {
      {"missing images", kMissing, labels, absl::StatusCode::kNotFound, "no such file", kImages},
      {"missing labels", images, kMissing, absl::StatusCode::kNotFound, "no such file", kLabels},
      {"images path is a directory", kDirectory, labels, absl::StatusCode::kInvalidArgument, "is a directory",
       kImages},
      {"empty images", "", labels, absl::StatusCode::kDataLoss, "truncated: the IDX magic", kImages},
      {"header cut", images.substr(0, 6), labels, absl::StatusCode::kDataLoss, "truncated: the IDX dimensions",
       kImages},
      {"bad magic", IdxImages(5, 3, 4, 0x00000804), labels, absl::StatusCode::kDataLoss,
       "bad IDX magic 0x00000804, expected 0x00000803", kImages},
      {"labels given as images", labels, labels, absl::StatusCode::kDataLoss, "bad IDX magic 0x00000801", kImages},
      {"images given as labels", images, images, absl::StatusCode::kDataLoss,
       "bad IDX magic 0x00000803, expected 0x00000801", kLabels},
      {"float images", IdxImages(5, 3, 4, 0x00000D03), labels, absl::StatusCode::kDataLoss, "bad IDX magic",
       kImages},
      {"zero height", IdxImages(5, 0, 4), labels, absl::StatusCode::kDataLoss, "bad IDX dimension 1: 0", kImages},
      {"zero count", IdxImages(0, 3, 4), IdxLabels({}), absl::StatusCode::kDataLoss, "bad IDX dimension 0: 0",
       kImages},
      {"absurd width", BigEndian(0x803) + BigEndian(5) + BigEndian(3) + BigEndian(1u << 20), labels,
       absl::StatusCode::kDataLoss, "bad IDX dimension 2: 1048576", kImages},
      {"pixels cut", images.substr(0, images.size() - 5), labels, absl::StatusCode::kDataLoss,
       "truncated: the header announces 76 bytes, the file has 71", kImages},
      {"pixels cut, gzipped", Gzip(images.substr(0, images.size() - 5)), labels, absl::StatusCode::kDataLoss,
       "truncated: pixel data needs 60 bytes at offset 16 but only 55 remain", kImages},
      // A lying header must fail on the missing data, not on reserving 6 GB for it.
      {"huge count, gzipped", Gzip(BigEndian(0x803) + BigEndian(2000000000) + BigEndian(28) + BigEndian(28)),
       Gzip(BigEndian(0x801) + BigEndian(2000000000)), absl::StatusCode::kDataLoss,
       "truncated: pixel data needs 65536 bytes at offset 16 but only 0 remain", kImages},
      {"trailing bytes", images + "xy", labels, absl::StatusCode::kDataLoss, "unexpected bytes after 5 images",
       kImages},
      {"trailing bytes, gzipped", Gzip(images + "x"), labels, absl::StatusCode::kDataLoss,
       "unexpected bytes after 5 images", kImages},
      {"labels cut", images, labels.substr(0, labels.size() - 1), absl::StatusCode::kDataLoss, "truncated",
       kLabels},
      {"trailing label", images, labels + "\x01", absl::StatusCode::kDataLoss, "unexpected bytes after 5 labels",
       kLabels},
      {"count mismatch", images, IdxLabels({0, 1, 2, 3}), absl::StatusCode::kInvalidArgument,
       "holds 5 images but", kBoth},
      {"label out of range", images, IdxLabels({0, 1, 10, 3, 4}), absl::StatusCode::kDataLoss,
       "label 10 of example 2 is not in [0, 10)", kLabels},
      {"gzip checksum", bad_crc, labels, absl::StatusCode::kDataLoss, "corrupt gzip data", kImages},
      {"gzip bad block", bad_block, labels, absl::StatusCode::kDataLoss, "corrupt gzip data", kImages},
      {"gzip cut", Gzip(images).substr(0, 30), labels, absl::StatusCode::kDataLoss, "truncated gzip stream",
       kImages},
      {"gzip without trailer", Gzip(images).substr(0, Gzip(images).size() - 8), labels,
       absl::StatusCode::kDataLoss, "truncated gzip stream", kImages},
      {"garbage after gzip", Gzip(images) + "garbage!", labels, absl::StatusCode::kDataLoss, "corrupt gzip data",
       kImages},
      {"labels gzip checksum", images, bad_label_crc, absl::StatusCode::kDataLoss, "corrupt gzip data", kLabels},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir dir;
    const std::string images_path = dir.Path("imgs-idx3-ubyte");
    const std::string labels_path = dir.Path("lbls-idx1-ubyte");
    for (const auto& [path, bytes] : {std::pair(images_path, c.images), std::pair(labels_path, c.labels)}) {
      if (bytes == kDirectory) {
        fs::create_directory(path);
      } else if (bytes != kMissing) {
        WriteFile(path, bytes);
      }
    }
    const absl::StatusOr<Dataset> data = LoadIdx(images_path, labels_path, kMean, kStd);
    EXPECT_THAT(data, StatusIsWithMessage(c.code, c.message));
    const std::string message(data.status().message());
    if (c.names != kLabels) {
      EXPECT_NE(message.find(images_path), std::string::npos) << message;
    }
    if (c.names != kImages) {
      EXPECT_NE(message.find(labels_path), std::string::npos) << message;
    }
  }
}

TEST(LoadFashionMnistTest, ReadsRawFilesFromADirectory) {
  TempDir dir;
  WriteFile(dir.Path("t10k-images-idx3-ubyte"), IdxImages(3, 28, 28));
  WriteFile(dir.Path("t10k-labels-idx1-ubyte"), IdxLabels({7, 8, 9}));
  ASSERT_OK_AND_ASSIGN(Dataset data, LoadFashionMnist(dir.path(), Split::kTest));
  EXPECT_EQ(data.size, 3);
  EXPECT_EQ(data.image_numel(), 784);
  EXPECT_EQ(data.images[100], Normalised(Pixel(100), kFashionMnistMean, kFashionMnistStd));
  EXPECT_THAT(LoadFashionMnist(dir.path(), Split::kTrain),
              StatusIsWithMessage(absl::StatusCode::kNotFound, "train-images-idx3-ubyte"));
}

TEST(LoadFashionMnistTest, RejectsOtherImageSizes) {
  TempDir dir;
  WriteFile(dir.Path("train-images-idx3-ubyte.gz"), Gzip(IdxImages(2, 27, 28)));
  WriteFile(dir.Path("train-labels-idx1-ubyte.gz"), Gzip(IdxLabels({1, 2})));
  EXPECT_THAT(LoadFashionMnist(dir.path(), Split::kTrain),
              StatusIsWithMessage(absl::StatusCode::kDataLoss, "train-images-idx3-ubyte.gz: images are 27x28"));
}

// The data set installed by Debian's dataset-fashion-mnist; skipped where it is not installed.
class RealFashionMnistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(kDefaultFashionMnistDir) / "train-images-idx3-ubyte.gz")) {
      GTEST_SKIP() << "Fashion-MNIST is not installed in " << kDefaultFashionMnistDir;
    }
  }
};

uint32_t LabelCrc(const Dataset& data) {
  std::string bytes(data.labels.begin(), data.labels.end());
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

TEST_F(RealFashionMnistTest, TrainingSet) {
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(Dataset train, LoadFashionMnist("", Split::kTrain));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("load_seconds", absl::StrCat(seconds));
  std::printf("loaded 60,000 Fashion-MNIST training images in %.3f s\n", seconds);
  EXPECT_EQ(train.size, 60000);
  EXPECT_EQ(train.channels, 1);
  EXPECT_EQ(train.height, 28);
  EXPECT_EQ(train.width, 28);
  EXPECT_EQ(train.num_classes, 10);
  ASSERT_EQ(train.images.size(), 60000u * 784u);
  // Reference values from Python (zlib.crc32 of the label bytes; numpy float32 normalisation).
  EXPECT_EQ(LabelCrc(train), 0x2ed6e46au);
  EXPECT_EQ(std::vector<int32_t>(train.labels.begin(), train.labels.begin() + 10),
            (std::vector<int32_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  std::vector<int> per_class(10, 0);
  for (int32_t l : train.labels) ++per_class[l];
  EXPECT_EQ(per_class, std::vector<int>(10, 6000));
  const std::vector<float> expected_pixels = {1.656057357788086f, 1.6338388919830322f, 1.611620306968689f,
                                              1.4449814558029175f, 1.3894351720809937f, 1.644948124885559f};
  EXPECT_EQ(std::vector<float>(train.images.begin() + 350, train.images.begin() + 356), expected_pixels);
  double sum = 0.0, sum_sq = 0.0;
  for (float v : train.images) {
    sum += v;
    sum_sq += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(train.images.size());
  const double mean = sum / n;
  EXPECT_NEAR(mean, 0.0, 1e-3);  // 0.000115
  EXPECT_NEAR(std::sqrt(sum_sq / n - mean * mean), 1.0, 1e-3);
}

TEST_F(RealFashionMnistTest, TestSetAndSubset) {
  ASSERT_OK_AND_ASSIGN(Dataset test, LoadFashionMnist(kDefaultFashionMnistDir, Split::kTest));
  EXPECT_EQ(test.size, 10000);
  EXPECT_EQ(LabelCrc(test), 0x242bc73fu);
  LoadOptions options;
  options.subset = 1000;
  ASSERT_OK_AND_ASSIGN(Dataset subset, LoadFashionMnist(kDefaultFashionMnistDir, Split::kTest, options));
  EXPECT_EQ(subset.size, 1000);
  ASSERT_EQ(subset.images.size(), 1000u * 784u);
  EXPECT_TRUE(std::equal(subset.labels.begin(), subset.labels.end(), test.labels.begin()));
  EXPECT_TRUE(std::equal(subset.images.begin(), subset.images.end(), test.images.begin()));
}

// CIFAR-10 records: label, then 1024 red, 1024 green, 1024 blue bytes.
std::string CifarRecord(int label, int record) {
  std::string bytes(1, static_cast<char>(label));
  for (int k = 0; k < 3072; ++k) bytes.push_back(static_cast<char>(Pixel(k + record)));
  return bytes;
}

// data_batch_1..5.bin with two records each (labels 0..9 in order), test_batch.bin gzipped with three.
void WriteCifar(const TempDir& dir) {
  for (int b = 1; b <= 5; ++b) {
    WriteFile(dir.Path(absl::StrCat("data_batch_", b, ".bin")),
              CifarRecord(2 * (b - 1), 2 * (b - 1)) + CifarRecord(2 * b - 1, 2 * b - 1));
  }
  WriteFile(dir.Path("test_batch.bin"), Gzip(CifarRecord(3, 100) + CifarRecord(4, 101) + CifarRecord(5, 102)));
}

TEST(LoadCifar10Test, ReadsBatchesInOrderAndNormalisesPerChannel) {
  TempDir dir;
  WriteCifar(dir);
  ASSERT_OK_AND_ASSIGN(Dataset train, LoadCifar10(dir.path(), Split::kTrain));
  EXPECT_EQ(train.size, 10);
  EXPECT_EQ(train.channels, 3);
  EXPECT_EQ(train.height, 32);
  EXPECT_EQ(train.width, 32);
  EXPECT_EQ(train.num_classes, 10);
  EXPECT_EQ(train.labels, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  ASSERT_EQ(train.images.size(), 10u * 3072u);
  for (int record : {0, 7}) {
    for (int c = 0; c < 3; ++c) {
      for (int i : {0, 500, 1023}) {
        const int k = c * 1024 + i;
        EXPECT_EQ(train.images[record * 3072 + k], Normalised(Pixel(k + record), kCifar10Mean[c], kCifar10Std[c]))
            << record << " " << c << " " << i;
      }
    }
  }
  ASSERT_OK_AND_ASSIGN(Dataset test, LoadCifar10(dir.path(), Split::kTest));
  EXPECT_EQ(test.labels, (std::vector<int32_t>{3, 4, 5}));
  LoadOptions options;
  options.subset = 3;
  ASSERT_OK_AND_ASSIGN(Dataset subset, LoadCifar10(dir.path(), Split::kTrain, options));
  EXPECT_EQ(subset.size, 3);
  EXPECT_EQ(subset.images.size(), 3u * 3072u);
  EXPECT_TRUE(std::equal(subset.images.begin(), subset.images.end(), train.images.begin()));
}

TEST(LoadCifar10Test, ReportsEachCorruptionWithItsCodeAndFile) {
  struct Case {
    const char* what;
    const char* file;  // replaced (or removed, if `bytes` is null) in an intact set
    const char* bytes_kind;
    absl::StatusCode code;
    const char* message;
  };
  const std::string record = CifarRecord(1, 0);
  const std::vector<Case> cases = {
      {"missing batch", "data_batch_3.bin", "missing", absl::StatusCode::kNotFound, "data_batch_3.bin: no such file"},
      {"missing test batch", "test_batch.bin", "missing", absl::StatusCode::kNotFound, "test_batch.bin"},
      {"partial record", "data_batch_2.bin", "partial", absl::StatusCode::kDataLoss,
       "data_batch_2.bin: size 6145 is not a multiple of the 3073-byte record"},
      {"partial record, gzipped", "data_batch_4.bin", "partial gz", absl::StatusCode::kDataLoss,
       "data_batch_4.bin: truncated: record 1 has 3072 of 3073 bytes"},
      {"label 10", "data_batch_5.bin", "label", absl::StatusCode::kDataLoss,
       "data_batch_5.bin: label 10 of record 1 is not in [0, 10)"},
      {"empty", "data_batch_1.bin", "empty", absl::StatusCode::kDataLoss, "data_batch_1.bin: no records"},
      {"corrupt gzip", "test_batch.bin", "bad gz", absl::StatusCode::kDataLoss, "test_batch.bin: corrupt gzip data"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir dir;
    WriteCifar(dir);
    const std::string path = dir.Path(c.file);
    const std::string kind = c.bytes_kind;
    if (kind == "missing") {
      fs::remove(path);
    } else if (kind == "partial") {
      WriteFile(path, record + record.substr(0, 3072));
    } else if (kind == "partial gz") {
      WriteFile(path, Gzip(record + record.substr(0, 3072)));
    } else if (kind == "label") {
      WriteFile(path, record + CifarRecord(10, 1));
    } else if (kind == "empty") {
      WriteFile(path, "");
    } else if (kind == "bad gz") {
      std::string gz = Gzip(record);
      gz[gz.size() - 8] ^= 0x55;
      WriteFile(path, gz);
    }
    const Split split = std::string(c.file) == "test_batch.bin" ? Split::kTest : Split::kTrain;
    const absl::StatusOr<Dataset> data = LoadCifar10(dir.path(), split);
    EXPECT_THAT(data, StatusIsWithMessage(c.code, c.message));
    EXPECT_NE(std::string(data.status().message()).find(path), std::string::npos) << data.status();
  }
  TempDir dir;
  WriteCifar(dir);
  LoadOptions negative;
  negative.subset = -3;
  EXPECT_THAT(LoadCifar10(dir.path(), Split::kTrain, negative), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ShuffleTest, SplitMix64MatchesTheReferenceStream) {
  // From shuffle_reference.py; also the published first outputs of splitmix64 seeded with 0.
  SplitMix64 rng(0);
  EXPECT_EQ(rng.Next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(rng.Next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(rng.Next(), 0x06C45D188009454FULL);
  SplitMix64 skipped(0);
  skipped.Skip(2);
  EXPECT_EQ(skipped.Next(), 0x06C45D188009454FULL);
}

TEST(ShuffleTest, EpochPermutationsMatchTheReference) {
  // shuffle_reference.py: one generator seeded with 314159 drawing epochs 0, 1, 2 of 10 samples.
  const std::vector<std::vector<int64_t>> expected = {
      {1, 3, 2, 4, 7, 9, 8, 5, 6, 0}, {6, 8, 2, 3, 7, 1, 9, 0, 5, 4}, {4, 1, 7, 6, 3, 9, 5, 8, 0, 2}};
  std::vector<int64_t> perm;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    EpochPermutation(314159, epoch, 10, &perm);
    EXPECT_EQ(perm, expected[epoch]) << epoch;
  }
}

TEST(ShuffleTest, SkippingEpochsEqualsDrawingThemInOrder) {
  constexpr int64_t kN = 1000;
  SplitMix64 sequential(42);
  std::vector<int64_t> drawn, skipped;
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    FisherYatesPermutation(kN, &sequential, &drawn);
    EpochPermutation(42, epoch, kN, &skipped);
    EXPECT_EQ(drawn, skipped) << epoch;
  }
}

TEST(ShuffleTest, SameSeedAndEpochSameOrderOtherwiseDifferent) {
  constexpr int64_t kN = 1000;
  std::vector<int64_t> a, b, next_epoch, other_seed;
  EpochPermutation(7, 3, kN, &a);
  EpochPermutation(7, 3, kN, &b);
  EpochPermutation(7, 4, kN, &next_epoch);
  EpochPermutation(8, 3, kN, &other_seed);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, next_epoch);
  EXPECT_NE(a, other_seed);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(sorted[i], i);  // every index exactly once
  EpochPermutation(7, 3, 0, &a);
  EXPECT_TRUE(a.empty());
  EpochPermutation(7, 3, 1, &a);
  EXPECT_EQ(a, std::vector<int64_t>{0});
}

// A data set of n images of two values each: image i holds (i, -i) and label i % 10.
Dataset Numbered(int64_t n) {
  Dataset data;
  data.size = n;
  data.channels = 1;
  data.height = 1;
  data.width = 2;
  data.num_classes = 10;
  for (int64_t i = 0; i < n; ++i) {
    data.images.push_back(static_cast<float>(i));
    data.images.push_back(static_cast<float>(-i));
    data.labels.push_back(static_cast<int32_t>(i % 10));
  }
  return data;
}

TEST(BatchIteratorTest, ShuffledBatchesCoverEveryExampleOnceWithAPartialLastBatch) {
  const Dataset data = Numbered(10);
  ASSERT_OK_AND_ASSIGN(BatchIterator it, BatchIterator::Create(data, 4, true, 314159, 1));
  EXPECT_EQ(it.num_batches(), 3);
  const std::vector<int64_t> order = it.Order();
  EXPECT_EQ(order, (std::vector<int64_t>{6, 8, 2, 3, 7, 1, 9, 0, 5, 4}));  // epoch 1 of the reference
  std::vector<float> images;
  std::vector<int32_t> labels;
  std::vector<int> sizes;
  std::vector<int64_t> seen;
  for (int n; (n = it.Next(&images, &labels)) > 0;) {
    sizes.push_back(n);
    ASSERT_EQ(images.size(), static_cast<size_t>(2 * n));
    ASSERT_EQ(labels.size(), static_cast<size_t>(n));
    for (int b = 0; b < n; ++b) {
      const int64_t index = static_cast<int64_t>(images[2 * b]);
      EXPECT_EQ(images[2 * b + 1], -static_cast<float>(index));
      EXPECT_EQ(labels[b], index % 10);
      seen.push_back(index);
    }
  }
  EXPECT_EQ(sizes, (std::vector<int>{4, 4, 2}));
  EXPECT_EQ(seen, order);
  EXPECT_EQ(it.Next(&images, &labels), 0);
  EXPECT_TRUE(images.empty());

  it.Rewind();
  EXPECT_EQ(it.Next(nullptr, &labels), 4);
  EXPECT_EQ(labels[0], 6);
}

TEST(BatchIteratorTest, UnshuffledOrderIsTheIdentity) {
  const Dataset data = Numbered(5);
  BatchIterator it(data, 2, false, 1, 0);
  std::vector<int32_t> labels;
  std::vector<int32_t> all;
  while (it.Next(nullptr, &labels) > 0) all.insert(all.end(), labels.begin(), labels.end());
  EXPECT_EQ(all, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(it.Order(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(BatchIteratorTest, RejectsBadArgumentsAndNeverReadsPastTheData) {
  const Dataset data = Numbered(5);
  EXPECT_THAT(BatchIterator::Create(data, 0, true, 1, 0),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "batch_size: 0"));
  EXPECT_THAT(BatchIterator::Create(data, 4, true, 1, -1),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "epoch: -1"));
  Dataset inconsistent = Numbered(5);
  inconsistent.size = 7;
  EXPECT_THAT(BatchIterator::Create(inconsistent, 4, true, 1, 0),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "inconsistent"));

  BatchIterator clamped(data, 0, false, 1, -3);
  EXPECT_EQ(clamped.batch_size(), 1);
  BatchIterator safe(inconsistent, 4, true, 1, 0);
  std::vector<float> images;
  int64_t total = 0;
  for (int n; (n = safe.Next(&images, nullptr)) > 0;) total += n;
  EXPECT_EQ(total, 5);
}

}  // namespace
}  // namespace gcprune::trainer
