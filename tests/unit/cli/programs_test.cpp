// Runs the real programs (build/bin/net-collectord, build/bin/net-collector) as an operator would.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/support.hpp"

namespace nc::test {
namespace {

std::string daemonBin() {
  return (binDir() / "net-collectord").string();
}

// Starts net-collectord with `cfg`, its stderr into `errlog`; the child's pid (-1 on failure).
pid_t spawnDaemon(const std::filesystem::path& cfg, const std::filesystem::path& errlog) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(errlog.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::execl(daemonBin().c_str(), "net-collectord", "--config", cfg.c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}
std::string cliBin() {
  return (binDir() / "net-collector").string();
}

void writeFile(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Programs, HelpAndVersionEverywhere) {
  for (const auto& argv :
       std::vector<std::vector<std::string>>{{daemonBin(), "--help"},
                                             {cliBin(), "--help"},
                                             {cliBin(), "status", "--help"},
                                             {cliBin(), "flows", "--help"},
                                             {cliBin(), "top", "--help"},
                                             {cliBin(), "series", "--help"},
                                             {cliBin(), "filters", "--help"},
                                             {cliBin(), "fields", "--help"},
                                             {cliBin(), "check-config", "--help"},
                                             {cliBin(), "provision", "--help"},
                                             {cliBin(), "provision", "plan", "--help"},
                                             {cliBin(), "provision", "apply", "--help"},
                                             {cliBin(), "provision", "remove", "--help"},
                                             {cliBin(), "provision", "status", "--help"},
                                             {cliBin(), "gen", "--help"}}) {
    auto r = run(argv);
    EXPECT_EQ(r.exit_code, 0) << argv.back() << r.err;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << argv.back();
  }
  auto v = run({daemonBin(), "--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("net-collectord 0.", 0), 0u) << v.out;
  auto c = run({cliBin(), "--version"});
  EXPECT_EQ(c.out.rfind("net-collector 0.", 0), 0u) << c.out;
}

// Every usage error exits 2 with CLI11's message (not CLI11's own codes 105..114); --help and
// --version still exit 0.
TEST(Programs, UsageErrorsExitTwo) {
  struct Case {
    std::vector<std::string> argv;
    std::string message;
  };
  for (const auto& c : std::vector<Case>{
           {{cliBin()}, "A subcommand is required"},                                // 106
           {{cliBin(), "nosuchcommand"}, "A subcommand is required"},               // 106
           {{cliBin(), "status", "--no-such-option"}, "--no-such-option"},          // 109
           {{cliBin(), "check-config"}, "file is required"},                        // 106
           {{cliBin(), "top", "-n", "many"}, "Could not convert: --limit = many"},  // 105
           {{cliBin(), "top", "--limit"}, "--limit: 1 required UINT missing"},      // 114
           {{daemonBin(), "--no-such-option"}, "--no-such-option"},                 // 109
           {{daemonBin(), "--config"}, "--config: 1 required TEXT missing"},        // 114
       }) {
    auto r = run(c.argv);
    EXPECT_EQ(r.exit_code, 2) << c.argv.back() << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.argv.back() << ": " << r.err;
  }
}

TEST(Programs, CheckConfigPrintsEveryErrorAndExitsOne) {
  TempDir dir("cfg");
  auto bad = dir.path() / "bad.yaml";
  writeFile(bad, "collector:\n  listen: [{port: 99999}]\n  nope: 1\n");
  auto r = run({daemonBin(), "--check-config", "--config", bad.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(
      r.err.find(bad.string() + ":2:19: collector.listen[0].port: must be 0..65535 (got 99999)"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(bad.string() + ":3:3: collector.nope: unknown key"), std::string::npos)
      << r.err;
  auto good = dir.path() / "good.yaml";
  writeFile(good, "log: {level: debug}\n");
  r = run({daemonBin(), "--check-config", "-c", good.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run({cliBin(), "check-config", bad.string()});
  EXPECT_EQ(r.exit_code, 1);
}

TEST(Programs, FieldsDocIsInStep) {
  auto r = run({cliBin(), "fields", "--markdown"});
  ASSERT_EQ(r.exit_code, 0);
  std::string doc = readFile(sourceDir() / "docs" / "fields.md");
  EXPECT_NE(doc.find(r.out), std::string::npos)
      << "docs/fields.md is stale: regenerate with `net-collector fields --markdown`";
}

TEST(Programs, FlowsAndTopOverJsonLines) {
  TempDir dir("flows");
  auto in = dir.path() / "flows.jsonl";
  writeFile(
      in,
      R"({"first":"2026-11-26T10:00:01.000Z","last":"2026-11-26T10:00:02.000Z","exporter":"192.0.2.1","src_addr":"10.0.0.1","dst_addr":"10.0.0.2","src_port":1000,"dst_port":443,"proto":6,"packets":10,"bytes":1000,"sampling_rate":1}
{"first":"2026-11-26T10:00:00.000Z","last":"2026-11-26T10:00:03.000Z","exporter":"192.0.2.1","src_addr":"10.0.0.3","dst_addr":"10.0.0.2","src_port":53,"dst_port":5353,"proto":17,"packets":2,"bytes":300,"sampling_rate":10}

{"first":"2026-11-26T10:00:05.000Z","last":"2026-11-26T10:00:05.000Z","exporter":"192.0.2.1","src_addr":"10.0.0.1","dst_addr":"2001:db8::1","src_port":1001,"dst_port":80,"proto":6,"packets":1,"bytes":60,"sampling_rate":1}
)");
  auto r = run({cliBin(), "flows", "-i", in.string(), "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Sorted by start time: the UDP flow first.
  EXPECT_EQ(r.out.find(R"({"bytes":300,)"), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3);

  r = run({cliBin(), "top", "-i", in.string(), "--by", "src_addr", "--format", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // 10.0.0.3: 300 bytes x sampling 10 = 3000 > 10.0.0.1: 1060.
  EXPECT_EQ(r.out.rfind("src_addr,flows,packets,bytes,pps,bps,bpp,first,last\n10.0.0.3,1,20,3000,"
                        "6,8000,150,",
                        0),
            0u)
      << r.out;
  EXPECT_NE(r.out.find("\n10.0.0.1,2,11,1060,"), std::string::npos) << r.out;

  r = run({cliBin(), "flows", "-i", "-", "--format", "table"}, readFile(in));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[2001:db8::1]:80"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Summary: 3 flows"), std::string::npos) << r.out;

  r = run({cliBin(), "top", "-i", in.string(), "--by", "nonsense"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown key 'nonsense'"), std::string::npos) << r.err;

  writeFile(dir.path() / "bad.jsonl", "{\"src_port\": \"x\"}\n");
  r = run({cliBin(), "flows", "-i", (dir.path() / "bad.jsonl").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.jsonl:1: field 'src_port' has a bad value"), std::string::npos)
      << r.err;
}

// The query language through the real binary: filters, errors with a caret, time windows,
// aggregation, nfdump -s shorthand, series, summary.
TEST(Programs, QueriesOverJsonLines) {
  TempDir dir("query");
  auto in = dir.path() / "flows.jsonl";
  writeFile(
      in,
      R"({"first":"2026-11-26T10:00:01.000Z","last":"2026-11-26T10:00:02.000Z","exporter":"192.0.2.1","src_addr":"10.0.0.1","dst_addr":"10.0.0.2","src_port":1000,"dst_port":443,"proto":6,"tcp_flags":18,"packets":10,"bytes":1000,"sampling_rate":1}
{"first":"2026-11-26T10:00:00.000Z","last":"2026-11-26T10:00:03.000Z","exporter":"192.0.2.1","src_addr":"10.0.0.3","dst_addr":"10.0.0.2","src_port":53,"dst_port":5353,"proto":17,"packets":2,"bytes":300,"sampling_rate":10,"export_proto":"ipfix"}
{"first":"2026-11-26T10:02:05.000Z","last":"2026-11-26T10:02:05.000Z","exporter":"192.0.2.1","src_addr":"10.0.0.1","dst_addr":"2001:db8::1","src_port":1001,"dst_port":80,"proto":6,"packets":1,"bytes":60,"sampling_rate":1}
)");
  auto q = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {cliBin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  // Positional words are joined like nfdump's command line.
  auto r =
      q({"flows", "-i", in.string(), "-f", "json", "-q", "proto", "tcp", "and", "port", "443"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find(R"("dst_port":443)"), std::string::npos) << r.out;

  r = q({"flows", "-i", in.string(), "--summary", "-f", "json", "--filter", "sampling_rate > 1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["flows"], 1);
  EXPECT_EQ(j["bytes"], 3000);  // scaled
  r = q({"flows", "-i", in.string(), "--summary", "-f", "json", "--raw", "export_proto ipfix"});
  EXPECT_EQ(nlohmann::json::parse(r.out)["bytes"], 300);

  // Errors point at the column.
  r = q({"flows", "-i", in.string(), "proto tcp and src port 70000"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("filter:1:24: port out of range 0..65535 (got 70000)\n"
                       "  proto tcp and src port 70000\n"
                       "                         ^"),
            std::string::npos)
      << r.err;

  // Time window and order.
  r = q({"flows", "-i", in.string(), "-f", "csv", "-q", "--since", "2026-11-26 10:00:01", "--until",
         "2026-11-26T10:02:00Z", "-O", "bytes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;  // header + one flow
  r = q({"flows", "-i", in.string(), "--since", "yesterday"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("bad time 'yesterday'"), std::string::npos) << r.err;

  // Aggregation -A with nfdump names, top -s shorthand, series.
  r = q({"flows", "-i", in.string(), "-A", "srcip,proto", "-O", "bytes", "-f", "csv", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("src_addr,proto,flows,packets,bytes,", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\n10.0.0.3,17,1,20,3000,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n10.0.0.1,6,2,11,1060,"), std::string::npos) << r.out;
  r = q({"top", "-i", in.string(), "-s", "dstip/flows", "-f", "json", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(R"({"bpp":)", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(R"("dst_addr":"10.0.0.2","first")"), std::string::npos) << r.out;
  r = q({"top", "-i", in.string(), "--by", "ip", "-o", "flows", "-f", "csv", "-q", "--raw"});
  EXPECT_NE(r.out.find("\n10.0.0.2,2,12,1300,"), std::string::npos) << r.out;
  r = q({"series", "-i", in.string(), "--bucket", "1m", "-f", "csv", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "time,flows,packets,bytes,pps,bps\n"
            "2026-11-26T10:00:00.000Z,2,30,4000,0,533\n"
            "2026-11-26T10:01:00.000Z,0,0,0,0,0\n"
            "2026-11-26T10:02:00.000Z,1,1,60,0,8\n");
  r = q({"top", "-i", in.string(), "--by", "nonsense"});
  EXPECT_NE(r.err.find("unknown key 'nonsense'"), std::string::npos) << r.err;

  // Table output ends with the summary line.
  r = q({"flows", "-i", in.string(), "-f", "table", "dst net 2001:db8::/32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Summary: 1 flows, 1 packets, 60 B"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 rows scanned"), std::string::npos) << r.out;

  // nfdump -o json input is detected.
  writeFile(dir.path() / "nf.json",
            "[\n{\n\t\"type\" : \"FLOW\",\n\t\"first\" : \"2026-11-26T10:00:00.000\",\n"
            "\t\"in_packets\" : 5,\n\t\"in_bytes\" : 500,\n\t\"proto\" : 17,\n"
            "\t\"src4_addr\" : \"10.9.9.9\",\n\t\"dst4_addr\" : \"10.8.8.8\"\n}]\n");
  r = q({"flows", "-i", (dir.path() / "nf.json").string(), "--summary", "-f", "json", "host",
         "10.9.9.9"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["packets"], 5);

  // No store at the path: a clear error.
  r = q({"flows", "--store", (dir.path() / "nostore").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nostore"), std::string::npos) << r.err;
}

// top -s names the bad order or key and lists the valid ones (not --by, not prefix lengths).
TEST(Programs, TopStatErrorsNameTheBadPart) {
  TempDir dir("stat");
  auto in = dir.path() / "flows.jsonl";
  writeFile(in, R"({"src_addr":"10.0.0.1","dst_addr":"10.0.0.2","packets":1,"bytes":60})"
                "\n");
  auto r = run({cliBin(), "top", "-i", in.string(), "-s", "dstport/foo"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--stat: unknown order 'foo' in 'dstport/foo' (KEY[/ORDER], ORDER one of "
                       "flows, packets, bytes, pps, bps, bpp)"),
            std::string::npos)
      << r.err;
  r = run({cliBin(), "top", "-i", in.string(), "-s", "bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--stat: unknown key 'bogus' (field names from `net-collector fields`, or "
                       "nfdump's srcip,"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("--by"), std::string::npos) << r.err;
  r = run({cliBin(), "top", "-i", in.string(), "-s", "bogus/bytes"});
  EXPECT_NE(r.err.find("--stat: unknown key 'bogus'"), std::string::npos) << r.err;
  r = run({cliBin(), "top", "-i", in.string(), "-o", "volume"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--order: unknown order 'volume' (one of flows, packets, bytes, pps, bps, "
                       "bpp)"),
            std::string::npos)
      << r.err;
  // KEY/BITS still works, with or without an order.
  r = run({cliBin(), "top", "-i", in.string(), "-s", "srcnet/24", "-f", "csv", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("10.0.0.0/24"), std::string::npos) << r.out;
  r = run({cliBin(), "top", "-i", in.string(), "-s", "srcnet/24/bytes", "-f", "csv", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// A JSON object with no flow field is an error naming its line, not a 1970 flow from :: to ::.
TEST(Programs, JsonInputWithoutFlowFieldsIsAnError) {
  auto r = run({cliBin(), "flows", "-i", "-", "-f", "json"},
               "{\"src_addr\":\"10.0.0.1\",\"bytes\":60}\n\n{\"garbage\":1}\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("-:3: no flow field in {\"garbage\":1}"), std::string::npos) << r.err;
  r = run({cliBin(), "flows", "-i", "-", "-f", "json"}, "{}\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("-:1: no flow field in {}"), std::string::npos) << r.err;
  // Unknown keys beside known ones are ignored.
  r = run({cliBin(), "flows", "-i", "-", "-f", "json", "-q"},
          "{\"src_addr\":\"10.0.0.1\",\"bytes\":60,\"future_field\":1}\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"src_addr\":\"10.0.0.1\""), std::string::npos) << r.out;
}

TEST(Programs, FiltersDocIsInStep) {
  auto r = run({cliBin(), "filters", "--markdown"});
  ASSERT_EQ(r.exit_code, 0);
  std::string doc = readFile(sourceDir() / "docs" / "filters.md");
  EXPECT_NE(doc.find(r.out), std::string::npos)
      << "docs/filters.md is stale: regenerate its table with `net-collector filters --markdown`";
  // Every example in the doc compiles (lines starting with "    net-collector flows").
  std::stringstream ss(doc);
  std::string line;
  int examples = 0;
  while (std::getline(ss, line)) {
    const std::string tag = "<!-- filter: ";
    if (line.rfind(tag, 0) == 0) {
      std::string f = line.substr(tag.size(), line.rfind(" -->") - tag.size());
      auto e = run({cliBin(), "flows", "--explain", "--", f});
      EXPECT_EQ(e.exit_code, 0) << "docs/filters.md example does not compile: " << f << "\n"
                                << e.err;
      ++examples;
    }
  }
  EXPECT_GE(examples, 10);
}

TEST(Programs, StatusWithoutDaemonIsAClearError) {
  auto r = run({cliBin(), "--socket", "/nonexistent/x.sock", "status"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot reach net-collectord at /nonexistent/x.sock"), std::string::npos)
      << r.err;
}

// --live: the filter applies before -n, -n 0 lists every flow the daemon holds, and a note says
// when the daemon's ring (4096 flows a receive shard) may have cut the answer short.
TEST(Programs, LiveQueriesFilterThenLimit) {
  TempDir dir("live");
  auto cfg = dir.path() / "nc.yaml";
  auto sock = dir.path() / "control.sock";
  writeFile(cfg,
            "collector: {listen: [\"127.0.0.1:0\"], threads: 1}\novsdb: {enabled: false}\n"
            "store: {path: " +
                (dir.path() / "flows").string() + "}\ncontrol: {socket: " + sock.string() + "}\n");
  auto errlog = dir.path() / "stderr.log";
  const pid_t pid = spawnDaemon(cfg, errlog);
  ASSERT_GE(pid, 0);
  struct Stop {
    pid_t pid;
    ~Stop() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } stop{pid};
  nlohmann::json status;
  for (int i = 0; i < 100 && status.is_null(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto r = run({cliBin(), "--socket", sock.string(), "status", "--json"});
    if (r.exit_code == 0) {
      status = nlohmann::json::parse(r.out);
    }
  }
  ASSERT_FALSE(status.is_null()) << readFile(errlog);
  const int port = status["listen"][0]["port"];
  auto send = [&](int records) {
    auto g = run({cliBin(), "gen", "-f", "ipfix", "-t", "127.0.0.1:" + std::to_string(port), "-n",
                  std::to_string(records), "--rate", "0", "--dst-ports", "80,443,53", "--proto",
                  "tcp", "-q"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
  };
  auto waitRecords = [&](uint64_t want) {
    for (int i = 0; i < 200; ++i) {
      auto r = run({cliBin(), "--socket", sock.string(), "status", "--json"});
      if (r.exit_code == 0 &&
          nlohmann::json::parse(r.out)["ingest"].value("records", 0ULL) >= want) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  auto lines = [](const std::string& s) { return std::count(s.begin(), s.end(), '\n'); };
  auto live = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {cliBin(), "--socket", sock.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };

  send(300);
  ASSERT_TRUE(waitRecords(300)) << readFile(errlog);
  // The filter first, then the limit: three matching rows.
  auto r = live({"flows", "--live", "-f", "json", "-q", "-n", "3", "dst", "port", "443"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out), 3) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '{'),
            lines(r.out));  // one object a line
  size_t at = 0;
  int with_443 = 0;
  while ((at = r.out.find("\"dst_port\":443", at)) != std::string::npos) {
    ++with_443;
    ++at;
  }
  EXPECT_EQ(with_443, 3) << r.out;
  // -n 0 (and no -n): every flow the daemon holds, not 100.
  r = live({"flows", "--live", "-f", "json", "-q", "-n", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out), 300);
  EXPECT_EQ(r.err, "");  // the ring is not full: no note
  r = live({"flows", "--live", "--summary", "-f", "json"});
  EXPECT_EQ(nlohmann::json::parse(r.out)["flows"], 300) << r.out;

  // Past the ring: 4096 kept, and the answer says so.
  send(5000);
  ASSERT_TRUE(waitRecords(5300)) << readFile(errlog);
  r = live({"flows", "--live", "-f", "json", "-q", "-n", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out), 4096);
  EXPECT_NE(r.err.find("--live answered from the 4096 flows the daemon holds in memory (the "
                       "newest 4096 per receive shard)"),
            std::string::npos)
      << r.err;
  r = live({"flows", "--live", "-f", "json", "-q", "-n", "5", "dst port 53"});
  EXPECT_EQ(lines(r.out), 5);
  EXPECT_EQ(r.err, "");  // limited by -n, not by the ring
  r = live({"top", "--live", "-f", "json", "-q", "--by", "dst_port"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out), 3) << r.out;
  EXPECT_NE(r.err.find("--live answered from the 4096 flows"), std::string::npos) << r.err;
}

// Starts the daemon, queries it, reloads a bad and a good config, and stops it with SIGTERM.
TEST(Programs, DaemonLifecycle) {
  TempDir dir("daemon");
  auto cfg = dir.path() / "nc.yaml";
  auto sock = dir.path() / "control.sock";
  writeFile(cfg,
            "collector: {listen: [\"127.0.0.1:0\"]}\novsdb: {enabled: false}\ncontrol: "
            "{socket: " +
                sock.string() + "}\n");
  auto errlog = dir.path() / "stderr.log";
  const pid_t pid = spawnDaemon(cfg, errlog);
  ASSERT_GE(pid, 0);
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    up = std::filesystem::exists(sock);
  }
  ASSERT_TRUE(up) << readFile(errlog);
  auto r = run({cliBin(), "--socket", sock.string(), "status", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"pid\":" + std::to_string(pid)), std::string::npos) << r.out;
  // A second daemon on the same socket refuses to start, and names the reason.
  auto second = run({daemonBin(), "--config", cfg.string()}, "", 10);
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("another net-collectord is running"), std::string::npos) << second.err;

  // A broken file on SIGHUP is rejected; the daemon keeps running.
  std::string good = readFile(cfg);
  writeFile(cfg, good + "log: {level: shouting}\n");
  ::kill(pid, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  r = run({cliBin(), "--socket", sock.string(), "status", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"reloads\":0"), std::string::npos) << r.out;
  // A good change is applied.
  writeFile(cfg, good + "log: {level: debug}\n");
  ::kill(pid, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  r = run({cliBin(), "--socket", sock.string(), "status", "--json"});
  EXPECT_NE(r.out.find("\"reloads\":1"), std::string::npos) << r.out;

  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(std::filesystem::exists(sock)) << "control socket left behind";
  std::string log = readFile(errlog);
  EXPECT_NE(log.find("log.level: must be debug, info, warning or error (got 'shouting')"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("keeping the running config"), std::string::npos) << log;
  EXPECT_NE(log.find("received SIGTERM, stopping"), std::string::npos) << log;
}

}  // namespace
}  // namespace nc::test
