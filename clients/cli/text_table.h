// Plain-text tables for the `gcprune` command line: left-aligned text columns, right-aligned numbers,
// two spaces between columns, no borders, so the output reads well in a terminal and splits on spaces.
#ifndef GCPRUNE_CLIENTS_CLI_TEXT_TABLE_H_
#define GCPRUNE_CLIENTS_CLI_TEXT_TABLE_H_

#include <string>
#include <vector>

namespace gcprune::cli {

class TextTable {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string header;
    Align align = Align::kLeft;
  };

  explicit TextTable(std::vector<Column> columns);

  // Adds a row; missing cells are blank and extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  // Adds a horizontal rule as wide as the table (e.g. above a totals row).
  void AddRule();
  int num_rows() const { return static_cast<int>(rows_.size()); }

  // The header line, then one line per row, each ending in '\n' and prefixed with `indent`. Trailing
  // spaces are trimmed. Widths count bytes of UTF-8 text as characters except continuation bytes.
  std::string Render(const std::string& indent = "") const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;  // an empty row is a rule
};

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_TEXT_TABLE_H_
