// Entry point of the `gcprune` command-line client.
#include <iostream>

#include "clients/cli/command.h"

int main(int argc, char** argv) { return gcprune::cli::RunCli(argc, argv, std::cout, std::cerr); }
