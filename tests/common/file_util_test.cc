// Tests of the whole-file helpers: error codes per failure and atomic replacement.
#include "common/file_util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::common {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/gcprune_file_util_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::string command = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(command.c_str()), 0);
  }
  std::string dir_;
};

TEST_F(FileUtilTest, WritesAtomicallyAndReadsBack) {
  const std::string path = dir_ + "/port";
  ASSERT_OK(WriteFileAtomically(path, "50051\n"));
  ASSERT_OK_AND_ASSIGN(std::string contents, ReadFileToString(path));
  EXPECT_EQ(contents, "50051\n");
  ASSERT_OK(WriteFileAtomically(path, std::string(200000, 'z')));
  ASSERT_OK_AND_ASSIGN(contents, ReadFileToString(path));
  EXPECT_EQ(contents.size(), 200000u);
  EXPECT_NE(access((path + ".tmp." + std::to_string(getpid())).c_str(), F_OK), 0);
}

TEST_F(FileUtilTest, ReportsEachFailureWithItsCodeAndPath) {
  EXPECT_THAT(ReadFileToString(dir_ + "/missing"), StatusIsWithMessage(absl::StatusCode::kNotFound, "/missing"));
  EXPECT_THAT(ReadFileToString(dir_), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(WriteFileAtomically(dir_ + "/big", std::string(100, 'a')));
  EXPECT_THAT(ReadFileToString(dir_ + "/big", 99), StatusIsWithMessage(absl::StatusCode::kResourceExhausted, "99"));
  EXPECT_THAT(WriteFileAtomically(dir_ + "/no/such/dir/file", "x"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(FileUtilTest, ReportsUnreadableFilesAsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads every file";
  const std::string path = dir_ + "/secret";
  ASSERT_OK(WriteFileAtomically(path, "x"));
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  EXPECT_THAT(ReadFileToString(path), StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace gcprune::common
