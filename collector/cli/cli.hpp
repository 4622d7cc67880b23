#pragma once
// The `net-collector` command line: subcommands status, flows, top, series, filters, fields,
// check-config, gen.
// collector/cmd/net-collector.cpp only calls runCli().
namespace nc::cli {

int runCli(int argc, char** argv);

}  // namespace nc::cli
