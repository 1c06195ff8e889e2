// Implementation of the terminal queries.
#include "clients/cli/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"

namespace gcprune::cli {

bool IsTerminal(const std::ostream& stream) {
  if (&stream == &std::cout) return isatty(STDOUT_FILENO) == 1;
  if (&stream == &std::cerr) return isatty(STDERR_FILENO) == 1;
  return false;
}

bool SupportsLiveLine(const std::ostream& stream) {
  const char* term = std::getenv("TERM");
  return IsTerminal(stream) && term != nullptr && term[0] != '\0' && std::string(term) != "dumb";
}

int TerminalWidth() {
  struct winsize size = {};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return std::max<int>(size.ws_col, 20);
  int columns = 0;
  if (const char* text = std::getenv("COLUMNS"); text != nullptr && absl::SimpleAtoi(text, &columns) && columns > 0) {
    return std::max(columns, 20);
  }
  return 100;
}

}  // namespace gcprune::cli
