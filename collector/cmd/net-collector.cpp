// net-collector: the command-line tool. All logic lives in collector/cli/.
#include "collector/cli/cli.hpp"

int main(int argc, char** argv) {
  return nc::cli::runCli(argc, argv);
}
