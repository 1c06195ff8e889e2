// What the command line needs to know about its terminal: whether a stream is one, and how wide it is.
#ifndef GCPRUNE_CLIENTS_CLI_TERMINAL_H_
#define GCPRUNE_CLIENTS_CLI_TERMINAL_H_

#include <ostream>

namespace gcprune::cli {

// True if `stream` is std::cout or std::cerr and its file descriptor is a terminal; false for every
// other stream (string streams in tests, files).
bool IsTerminal(const std::ostream& stream);

// True if `stream` is a terminal that understands carriage return and "erase to end of line" for a line
// redrawn in place: IsTerminal, and $TERM is set and not "dumb".
bool SupportsLiveLine(const std::ostream& stream);

// Columns of the terminal on stderr, else $COLUMNS, else 100; at least 20.
int TerminalWidth();

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_TERMINAL_H_
