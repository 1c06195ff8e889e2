// Tests of the step journal (append, replay, torn tails, corruption, undo, reset) and of the state
// directory (lock, metadata round trip, deletion, leftovers of interrupted creations).
#include "pruner_service/service/step_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pruner_service/service/state_directory.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using ::testing::ElementsAre;

// A fresh temporary folder, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gcprune-journal-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Replayed {
  StepRecord record;
  std::vector<float> deltas;
};

absl::StatusOr<std::unique_ptr<StepJournal>> OpenCollecting(const std::string& path, std::vector<Replayed>* out,
                                                            bool sync = false) {
  StepJournal::Options options;
  options.sync = sync;
  return StepJournal::Open(path, options, [out](const StepRecord& record, absl::Span<const float> deltas) {
    out->push_back({record, std::vector<float>(deltas.begin(), deltas.end())});
    return absl::OkStatus();
  });
}

StepRecord Record(int64_t step, int32_t iteration) {
  return StepRecord{step, iteration, 2.5 + static_cast<double>(step), 2.0, 1e-3, 0.9};
}

int64_t FileSize(const std::string& path) { return static_cast<int64_t>(std::filesystem::file_size(path)); }

TEST(StepJournalTest, ReplaysAppendedRecordsExactly) {
  TempDir dir;
  const std::string path = dir.path() + "/journal.bin";
  const float nan = std::numeric_limits<float>::quiet_NaN();
  {
    std::vector<Replayed> none;
    ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &none, /*sync=*/true));
    EXPECT_TRUE(none.empty());
    ASSERT_OK(journal->Append(Record(0, 1), std::vector<float>{1.5f, -2.0f, nan}));
    ASSERT_OK(journal->Append(Record(1, 1), {}));  // a method without steps stores no deltas
    EXPECT_EQ(journal->num_records(), 2);
  }
  std::vector<Replayed> replayed;
  ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &replayed));
  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_EQ(replayed[0].record.step, 0);
  EXPECT_EQ(replayed[0].record.iteration, 1);
  EXPECT_EQ(replayed[0].record.loss_before, 2.5);
  EXPECT_EQ(replayed[0].record.loss_after, 2.0);
  EXPECT_EQ(replayed[0].record.learning_rate, 1e-3);
  EXPECT_EQ(replayed[0].record.momentum, 0.9);
  ASSERT_EQ(replayed[0].deltas.size(), 3u);
  EXPECT_EQ(replayed[0].deltas[0], 1.5f);
  EXPECT_EQ(replayed[0].deltas[1], -2.0f);
  EXPECT_TRUE(std::isnan(replayed[0].deltas[2]));
  EXPECT_EQ(replayed[1].record.step, 1);
  EXPECT_TRUE(replayed[1].deltas.empty());
  EXPECT_EQ(journal->torn_tail_bytes(), 0);
}

// A crash in the middle of a write leaves a prefix of the last record: every cut is detected and
// dropped, and the records before it survive.
TEST(StepJournalTest, DropsATornTailAtEveryCut) {
  TempDir dir;
  const std::string path = dir.path() + "/journal.bin";
  int64_t one_record = 0;
  int64_t two_records = 0;
  {
    std::vector<Replayed> none;
    ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &none));
    ASSERT_OK(journal->Append(Record(0, 1), std::vector<float>(10, 0.25f)));
    one_record = journal->size_bytes();
    ASSERT_OK(journal->Append(Record(1, 1), std::vector<float>(10, 0.5f)));
    two_records = journal->size_bytes();
  }
  std::ifstream in(path, std::ios::binary);
  const std::string full((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(static_cast<int64_t>(full.size()), two_records);
  for (int64_t cut = one_record + 1; cut < two_records; ++cut) {
    SCOPED_TRACE(cut);
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(full.data(), cut);
    }
    std::vector<Replayed> replayed;
    ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &replayed));
    ASSERT_EQ(replayed.size(), 1u);
    EXPECT_EQ(replayed[0].record.step, 0);
    EXPECT_EQ(journal->torn_tail_bytes(), cut - one_record);
    EXPECT_EQ(FileSize(path), one_record);  // truncated, so the next append follows record 0
    ASSERT_OK(journal->Append(Record(1, 1), std::vector<float>(10, 0.5f)));
  }
}

TEST(StepJournalTest, DropsALastRecordWithABadChecksum) {
  TempDir dir;
  const std::string path = dir.path() + "/journal.bin";
  {
    std::vector<Replayed> none;
    ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &none));
    ASSERT_OK(journal->Append(Record(0, 1), std::vector<float>(4, 1.0f)));
    ASSERT_OK(journal->Append(Record(1, 1), std::vector<float>(4, 1.0f)));
  }
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-1, std::ios::end);
    f.put('\x7f');  // flips bits of the last delta of the last record
  }
  std::vector<Replayed> replayed;
  ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &replayed));
  EXPECT_EQ(replayed.size(), 1u);
  EXPECT_GT(journal->torn_tail_bytes(), 0);
}

TEST(StepJournalTest, CorruptionBeforeTheTailIsDataLoss) {
  TempDir dir;
  const std::string path = dir.path() + "/journal.bin";
  int64_t header_and_first = 0;
  {
    std::vector<Replayed> none;
    ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &none));
    ASSERT_OK(journal->Append(Record(0, 1), std::vector<float>(4, 1.0f)));
    header_and_first = journal->size_bytes();
    ASSERT_OK(journal->Append(Record(1, 1), std::vector<float>(4, 1.0f)));
  }
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(header_and_first - 1);
    f.put('\x55');
  }
  std::vector<Replayed> replayed;
  EXPECT_THAT(OpenCollecting(path, &replayed), StatusIsWithMessage(absl::StatusCode::kDataLoss, "CRC mismatch"));
}

TEST(StepJournalTest, ForeignFileIsDataLossAndShortHeaderStartsAfresh) {
  TempDir dir;
  const std::string path = dir.path() + "/journal.bin";
  {
    std::ofstream out(path, std::ios::binary);
    out << "this is not a journal at all";
  }
  std::vector<Replayed> replayed;
  EXPECT_THAT(OpenCollecting(path, &replayed), StatusIsWithMessage(absl::StatusCode::kDataLoss, "bad header"));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "GCP";  // a crash while the header was written
  }
  ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &replayed));
  EXPECT_TRUE(replayed.empty());
  EXPECT_EQ(journal->torn_tail_bytes(), 3);
}

TEST(StepJournalTest, UndoAndReset) {
  TempDir dir;
  const std::string path = dir.path() + "/journal.bin";
  std::vector<Replayed> none;
  ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &none));
  EXPECT_THAT(journal->UndoLastAppend(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(journal->Append(Record(0, 1), std::vector<float>(4, 1.0f)));
  ASSERT_OK(journal->Append(Record(1, 1), std::vector<float>(4, 2.0f)));
  ASSERT_OK(journal->UndoLastAppend());
  EXPECT_THAT(journal->UndoLastAppend(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(journal->Append(Record(1, 1), std::vector<float>(4, 3.0f)));
  journal.reset();
  std::vector<Replayed> replayed;
  ASSERT_OK_AND_ASSIGN(journal, OpenCollecting(path, &replayed));
  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_THAT(replayed[1].deltas, ElementsAre(3.0f, 3.0f, 3.0f, 3.0f));
  ASSERT_OK(journal->Reset());
  EXPECT_EQ(journal->num_records(), 0);
  journal.reset();
  replayed.clear();
  ASSERT_OK_AND_ASSIGN(journal, OpenCollecting(path, &replayed));
  EXPECT_TRUE(replayed.empty());
}

TEST(StepJournalTest, VisitorErrorStopsOpening) {
  TempDir dir;
  const std::string path = dir.path() + "/journal.bin";
  {
    std::vector<Replayed> none;
    ASSERT_OK_AND_ASSIGN(auto journal, OpenCollecting(path, &none));
    ASSERT_OK(journal->Append(Record(0, 1), {}));
  }
  EXPECT_THAT(StepJournal::Open(path, {},
                                [](const StepRecord&, absl::Span<const float>) {
                                  return absl::DataLossError("step 0 unexpected");
                                }),
              StatusIsWithMessage(absl::StatusCode::kDataLoss, "step 0 unexpected"));
}

TEST(StepJournalTest, MissingFolderIsNotFound) {
  std::vector<Replayed> none;
  EXPECT_THAT(OpenCollecting("/nonexistent-gcprune-folder/journal.bin", &none), StatusIs(absl::StatusCode::kNotFound));
}

state::SessionMetadata Metadata(const std::string& id) {
  state::SessionMetadata metadata;
  metadata.set_session_id(id);
  metadata.set_label("run 7");
  metadata.set_created_unix_ms(1234);
  metadata.set_core("core bytes");
  metadata.set_next_step(42);
  return metadata;
}

TEST(StateDirectoryTest, MetadataRoundTripAndDeletion) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto state, StateDirectory::Open(dir.path() + "/state", /*sync=*/true));
  ASSERT_OK(state->CreateSession(Metadata("abc")));
  EXPECT_THAT(state->CreateSession(Metadata("abc")), StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(state::SessionMetadata read, state->ReadMetadata("abc"));
  EXPECT_EQ(read.label(), "run 7");
  EXPECT_EQ(read.next_step(), 42);
  EXPECT_EQ(read.format_version(), 1u);
  state::SessionMetadata changed = Metadata("abc");
  changed.set_next_step(50);
  ASSERT_OK(state->WriteMetadata(changed));
  ASSERT_OK_AND_ASSIGN(read, state->ReadMetadata("abc"));
  EXPECT_EQ(read.next_step(), 50);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> ids, state->ListSessions());
  EXPECT_THAT(ids, ElementsAre("abc"));
  ASSERT_OK(state->DeleteSession("abc"));
  EXPECT_THAT(state->ReadMetadata("abc"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(state->DeleteSession("abc"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(ids, state->ListSessions());
  EXPECT_TRUE(ids.empty());
}

TEST(StateDirectoryTest, SecondOpenOfTheSameFolderIsRefused) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto first, StateDirectory::Open(dir.path(), false));
  EXPECT_THAT(StateDirectory::Open(dir.path(), false),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "in use by another process"));
  first.reset();
  EXPECT_OK(StateDirectory::Open(dir.path(), false));
}

TEST(StateDirectoryTest, ForeignOrBrokenMetadataIsDataLoss) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto state, StateDirectory::Open(dir.path(), false));
  ASSERT_OK(state->CreateSession(Metadata("one")));
  std::filesystem::create_directories(dir.path() + "/sessions/two");
  std::filesystem::copy_file(dir.path() + "/sessions/one/metadata.pb", dir.path() + "/sessions/two/metadata.pb");
  EXPECT_THAT(state->ReadMetadata("two"), StatusIsWithMessage(absl::StatusCode::kDataLoss, "holds session 'one'"));
  {
    std::ofstream out(dir.path() + "/sessions/one/metadata.pb", std::ios::binary | std::ios::trunc);
    out << "\xff\xff\xff";
  }
  EXPECT_THAT(state->ReadMetadata("one"), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(StateDirectoryTest, ListingRemovesFoldersOfInterruptedCreations) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto state, StateDirectory::Open(dir.path(), false));
  ASSERT_OK(state->CreateSession(Metadata("kept")));
  std::filesystem::create_directories(dir.path() + "/sessions/half-made");
  std::filesystem::create_directories(dir.path() + "/sessions/bad name!");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> ids, state->ListSessions());
  EXPECT_THAT(ids, ElementsAre("kept"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/sessions/half-made"));
}

TEST(StateDirectoryTest, SessionIdValidation) {
  EXPECT_OK(ValidateSessionId("0123456789abcdef0123456789abcdef", "id"));
  EXPECT_OK(ValidateSessionId("A-b_c", "id"));
  EXPECT_THAT(ValidateSessionId("", "open.resume.session_id"),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "open.resume.session_id"));
  EXPECT_THAT(ValidateSessionId("../etc", "id"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateSessionId(std::string(65, 'a'), "id"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace gcprune::pruner
