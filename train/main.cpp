// build/miras: the command line (train/cli.h). `miras --help` lists the commands.
#include "train/cli.h"

int main(int argc, char** argv) { return miras::run_cli(argc, argv); }
