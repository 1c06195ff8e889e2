// Implementation of the plain-text table.
#include "clients/cli/text_table.h"

#include <algorithm>
#include <utility>

namespace gcprune::cli {
namespace {

// Display width of UTF-8 text: every byte except continuation bytes (10xxxxxx) counts one column.
size_t DisplayWidth(const std::string& text) {
  size_t width = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++width;
  }
  return width;
}

void TrimTrailingSpaces(std::string* line) {
  while (!line->empty() && line->back() == ' ') line->pop_back();
}

}  // namespace

TextTable::TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}

void TextTable::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  // A row of blanks must not turn into a rule.
  if (std::all_of(cells.begin(), cells.end(), [](const std::string& cell) { return cell.empty(); })) {
    if (!cells.empty()) cells[0] = " ";
  }
  rows_.push_back(std::move(cells));
}

void TextTable::AddRule() { rows_.emplace_back(); }

std::string TextTable::Render(const std::string& indent) const {
  std::vector<size_t> widths(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) widths[i] = DisplayWidth(columns_[i].header);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], DisplayWidth(row[i]));
  }
  size_t total = 0;
  for (size_t i = 0; i < widths.size(); ++i) total += widths[i] + (i == 0 ? 0 : 2);

  auto render_cells = [&](const std::vector<std::string>& cells) {
    std::string line = indent;
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (i > 0) line += "  ";
      const std::string& cell = cells[i];
      const std::string padding(widths[i] - DisplayWidth(cell), ' ');
      // Headers of numeric columns align with their numbers.
      if (columns_[i].align == Align::kRight) {
        line += padding + cell;
      } else {
        line += cell + padding;
      }
    }
    TrimTrailingSpaces(&line);
    return line + "\n";
  };

  std::vector<std::string> header_cells;
  header_cells.reserve(columns_.size());
  for (const Column& column : columns_) header_cells.push_back(column.header);
  std::string text = render_cells(header_cells);
  for (const auto& row : rows_) {
    text += row.empty() ? indent + std::string(total, '-') + "\n" : render_cells(row);
  }
  return text;
}

}  // namespace gcprune::cli
